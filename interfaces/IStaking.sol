// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Staking of edge nodes and validators
/// @notice One stake per account. Active stake backs hosting and committee duty; unbonding stake waits
/// `unbondingDelay` seconds (longer than any challenge window plus the longest dispute) and stays slashable.
/// Only the dispute modules ("slashers") may lock, unlock and slash.
interface IStaking {
    error ZeroAmount();
    error InsufficientStake(uint256 available, uint256 requested);
    error StakeLocked(address account, uint256 locks);
    error NothingToWithdraw();
    error UnbondingNotDue(uint256 readyAt);
    error NotSlasher(address caller);
    error NotDeployer(address caller);
    error SlashersAlreadySet();
    error NotLocked(address account);
    error AlreadyValidator(address account);
    error NotAValidator(address account);
    error TransferFailed();
    error InvalidDelay();

    event Deposited(address indexed account, uint256 amount, uint256 activeStake);
    event UnbondRequested(address indexed account, uint256 amount, uint256 totalUnbonding, uint256 readyAt);
    event Withdrawn(address indexed account, uint256 amount);
    event Locked(address indexed account, address indexed by, uint256 locks);
    event Unlocked(address indexed account, address indexed by, uint256 locks);
    /// @notice `amount` was taken from `account` (active first, then unbonding) and sent to the slasher.
    event Slashed(address indexed account, address indexed slasher, uint256 amount);
    event ValidatorJoined(address indexed account);
    event ValidatorLeft(address indexed account);
    event SlasherSet(address indexed slasher);

    /// @notice Adds msg.value to the caller's active stake.
    function deposit() external payable;

    /// @notice Moves `amount` of active stake to unbonding; the whole unbonding balance becomes
    /// withdrawable `unbondingDelay` seconds after this call (a later request restarts the clock).
    function requestUnbond(uint256 amount) external;

    /// @notice Sends the caller's unbonding balance once it is due and no dispute locks the account.
    function withdraw() external;

    /// @notice Adds the caller to the validator set (committee candidates, weighted by active stake).
    function joinValidators() external;

    /// @notice Removes the caller from the validator set.
    function leaveValidators() external;

    /// @notice Wires the dispute modules once; callable only by the deployer, only once.
    function setSlashers(address[] calldata slashers) external;

    /// @notice Counts one more open dispute against `account`; a locked account cannot withdraw. Slashers only.
    function lock(address account) external;

    /// @notice Releases one lock taken with `lock`. Slashers only.
    function unlock(address account) external;

    /// @notice Takes up to `amount` from `account` (active stake first, then unbonding) and sends it to the
    /// calling slasher, which pays rewards and burns the rest. Slashers only.
    /// @return taken the amount actually taken (less than `amount` if the account had less)
    function slash(address account, uint256 amount) external returns (uint256 taken);

    function stakeOf(address account) external view returns (uint256);
    function unbondingOf(address account) external view returns (uint256 amount, uint256 readyAt);
    /// @notice Active plus unbonding stake: what a slash can take.
    function slashableOf(address account) external view returns (uint256);
    function locksOf(address account) external view returns (uint256);
    function unbondingDelay() external view returns (uint256);
    function isSlasher(address account) external view returns (bool);
    function isValidator(address account) external view returns (bool);
    function validatorCount() external view returns (uint256);
    function validatorAt(uint256 index) external view returns (address);
    function validators() external view returns (address[] memory);
}
