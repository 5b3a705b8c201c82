// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title What every dispute module shares (docs/protocol.md, section 1)
/// @notice A dispute module takes a challenger's bond against one token leaf of a commitment, may slash the node
/// through Staking, and pays out only by crediting balances that their owners `claim`.
/// @dev The errors and events below are raised by `DisputeModule`, the base of FraudProof and CommitteeDispute;
/// declaring them once here keeps their selectors identical in both modules.
interface IDisputeModule {
    error WrongBond(uint256 sent, uint256 required);
    error LeafMismatch();
    error InvalidLeafProof();
    error LeafAlreadyChallenged(bytes32 commitmentId, bytes32 leaf);
    error NothingToClaim();
    error TransferFailed();
    error NotStaking(address caller);

    event Claimed(address indexed account, uint256 amount);

    /// @notice Sends the caller its credited rewards and bonds.
    function claim() external;

    /// @notice The bond a challenger sends with `challenge`, in wei.
    function bond() external view returns (uint256);

    /// @notice The balance `account` can `claim`, in wei.
    function claimable(address account) external view returns (uint256);
}
