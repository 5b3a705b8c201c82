// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IDisputeModule} from "../interfaces/IDisputeModule.sol";
import {IExpertRegistry} from "../interfaces/IExpertRegistry.sol";
import {IResultLedger} from "../interfaces/IResultLedger.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @title The machinery every dispute module shares (docs/protocol.md, sections 1, 5 and 6)
/// @notice Holds the wiring (ledger, registry, staking), the challenger's bond, the checks that a challenged token
/// leaf belongs to the commitment and is not already under challenge, and the money paths: balances credited to
/// accounts and withdrawn with `claim` (pull payments), and the burn.
/// @dev A module (FraudProof, CommitteeDispute) decides when a leaf is under challenge (`_isUnderChallenge`) and
/// how a dispute is resolved; it credits with `_credit` and burns with `_burn`. Money leaves only through `claim`
/// and the burn; slashed ETH arrives from Staking, the only sender `receive` accepts.
abstract contract DisputeModule is IDisputeModule, ReentrancyGuard {
    /// @notice Where the part of a slash or bond that nobody is credited goes.
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @notice The ledger whose commitments are challenged (and invalidated on fraud).
    IResultLedger public immutable ledger;
    /// @notice The registry holding each model's mode and each expert version's data.
    IExpertRegistry public immutable registry;
    /// @notice The staking contract that locks and slashes nodes; the only sender of ETH to `receive`.
    IStaking public immutable staking;
    /// @inheritdoc IDisputeModule
    uint256 public immutable bond;

    /// @dev The latest dispute on each challenged leaf; see `_isUnderChallenge`.
    mapping(bytes32 commitmentId => mapping(bytes32 leaf => uint256 disputeId)) private _leafDispute;
    mapping(address account => uint256) private _claimable;

    /// @dev Deployed after the ledger; `Staking.setSlashers` and `ResultLedger.setDisputeModules` must then name the
    /// module (docs/protocol.md 1).
    /// @param bond_ the challenger's bond, in wei
    constructor(IResultLedger ledger_, IExpertRegistry registry_, IStaking staking_, uint256 bond_) {
        ledger = ledger_;
        registry = registry_;
        staking = staking_;
        bond = bond_;
    }

    /// @notice Accepts slashed stake from Staking (which sends it to the slasher) and nothing else.
    receive() external payable {
        if (msg.sender != address(staking)) revert NotStaking(msg.sender);
    }

    /// @inheritdoc IDisputeModule
    function claim() external nonReentrant {
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @inheritdoc IDisputeModule
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    // ---------------------------------------------------------------- hooks

    /// @dev Whether the leaf whose latest dispute is `disputeId` (0: none) is closed to new challenges. Each module
    /// says which of its outcomes leave the leaf open again.
    function _isUnderChallenge(uint256 disputeId) internal view virtual returns (bool);

    // ---------------------------------------------------------------- helpers for modules

    /// @dev Reverts unless the call carries exactly the bond.
    function _checkBond() internal view {
        if (msg.value != bond) revert WrongBond(msg.value, bond);
    }

    /// @dev Checks that `leaf` is a token of `commitment` (same node, model and expert version, and under its root)
    /// and that it is not under challenge already. Returns the ids a dispute records (docs/protocol.md 2.1).
    function _checkLeaf(
        IResultLedger.Commitment calldata commitment,
        IResultLedger.Leaf calldata leaf,
        bytes32[] calldata proof,
        uint256 modelId
    ) internal view returns (bytes32 commitmentId, bytes32 leafHash) {
        if (
            leaf.node != commitment.node || leaf.modelId != modelId || leaf.expertIndex != commitment.expertIndex
                || leaf.expertVersion != commitment.expertVersion
        ) revert LeafMismatch();

        commitmentId = keccak256(abi.encode(commitment));
        leafHash = keccak256(bytes.concat(keccak256(abi.encode(leaf))));
        if (!MerkleProof.verifyCalldata(proof, commitment.root, leafHash)) revert InvalidLeafProof();
        if (_isUnderChallenge(_leafDispute[commitmentId][leafHash])) {
            revert LeafAlreadyChallenged(commitmentId, leafHash);
        }
    }

    /// @dev Records `disputeId` as the latest dispute on the leaf (checked by `_checkLeaf` first).
    function _setLeafDispute(bytes32 commitmentId, bytes32 leafHash, uint256 disputeId) internal {
        _leafDispute[commitmentId][leafHash] = disputeId;
    }

    /// @dev The latest dispute on the leaf (0: none).
    function _leafDisputeOf(bytes32 commitmentId, bytes32 leafHash) internal view returns (uint256) {
        return _leafDispute[commitmentId][leafHash];
    }

    /// @dev Adds `amount` to what `account` can claim.
    function _credit(address account, uint256 amount) internal {
        _claimable[account] += amount;
    }

    /// @dev Sends `amount` (may be zero) to BURN_ADDRESS: nobody can spend it, and this contract's balance stays
    /// equal to the bonds it holds plus the credited balances.
    function _burn(uint256 amount) internal {
        if (amount > 0) _send(BURN_ADDRESS, amount);
    }

    function _send(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
