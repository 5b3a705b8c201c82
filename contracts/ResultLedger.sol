// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IExpertRegistry} from "../interfaces/IExpertRegistry.sol";
import {IResultLedger} from "../interfaces/IResultLedger.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @title Result ledger: funded tasks, window commitments, signed receipts, finalisation and payment
/// @notice Publishers escrow ETH per task; edge nodes commit one Merkle root per window of results, which reserves
/// the window's payment; after the model's challenge window, with no dispute open, anyone finalises the commitment
/// and the node can claim its payment. Dispute modules block finalisation while they run and invalidate a commitment
/// proven fraudulent, which returns its reservation to the task. See docs/protocol.md, section 4.
/// @dev A commitment costs one new storage slot: its record is keyed by keccak256(abi.encode(commitment)) and the
/// full struct is only emitted; every later call passes the struct back and is checked against the key.
contract ResultLedger is IResultLedger, EIP712, ReentrancyGuard {
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(uint256 taskId,address node,uint256 modelId,uint32 expertIndex,uint32 expertVersion,bytes32 requestId,bytes32 root,uint64 tokenCount)"
    );

    /// @dev Storage layout of a task, arranged so that `commit` reads two slots and writes one: slot 0 holds what it
    /// reads (price, model, closed), slot 1 the escrow it updates. `task()` returns the interface's `Task`.
    struct TaskRecord {
        uint128 pricePerToken;
        /// @dev registry model ids start at 1, so 0 marks a task that does not exist
        uint64 modelId;
        bool closed;
        uint128 available;
        uint128 reserved;
        address publisher;
    }

    /// @dev The one slot of a commitment: its `CommitmentState` plus what `closeDispute`, which only gets the id,
    /// needs to release the reservation. Packing these into the status slot costs `commit` nothing extra.
    struct CommitmentRecord {
        Status status;
        uint32 openDisputes;
        bool fromReceipt;
        uint64 taskId;
        uint64 tokenCount;
    }

    IExpertRegistry public immutable registry;
    IStaking public immutable staking;
    address private immutable _deployer;

    uint256 private _taskCount;
    mapping(uint256 taskId => TaskRecord) private _tasks;
    mapping(bytes32 commitmentId => CommitmentRecord) private _commitments;
    mapping(bytes32 digest => bool) private _receiptPosted;
    mapping(address account => uint256) private _claimable;
    mapping(address module => bool) private _disputeModules;
    bool private _disputeModulesSet;

    modifier onlyDisputeModule() {
        if (!_disputeModules[msg.sender]) revert NotDisputeModule(msg.sender);
        _;
    }

    constructor(IExpertRegistry registry_, IStaking staking_) EIP712("B-MoE ResultLedger", "1") {
        registry = registry_;
        staking = staking_;
        _deployer = msg.sender;
    }

    // ---------------------------------------------------------------- tasks

    /// @inheritdoc IResultLedger
    function createTask(uint256 modelId, uint128 pricePerToken) external payable returns (uint256 taskId) {
        if (modelId == 0 || modelId > registry.modelCount()) revert UnknownModel(modelId);
        if (pricePerToken == 0) revert ZeroPrice();
        if (msg.value == 0) revert ZeroAmount();
        taskId = ++_taskCount;
        _tasks[taskId] = TaskRecord({
            pricePerToken: pricePerToken,
            modelId: SafeCast.toUint64(modelId),
            closed: false,
            available: SafeCast.toUint128(msg.value),
            reserved: 0,
            publisher: msg.sender
        });
        emit TaskCreated(taskId, msg.sender, modelId, pricePerToken, msg.value);
    }

    /// @inheritdoc IResultLedger
    function fund(uint256 taskId) external payable {
        TaskRecord storage t = _openTaskOfCaller(taskId);
        if (msg.value == 0) revert ZeroAmount();
        uint128 available = t.available + SafeCast.toUint128(msg.value);
        t.available = available;
        emit TaskFunded(taskId, msg.value, available);
    }

    /// @inheritdoc IResultLedger
    function closeTask(uint256 taskId) external {
        TaskRecord storage t = _openTaskOfCaller(taskId);
        uint128 refund = t.available;
        t.closed = true;
        t.available = 0;
        _claimable[msg.sender] += refund;
        emit TaskClosed(taskId, refund);
    }

    // ---------------------------------------------------------------- commitments

    /// @inheritdoc IResultLedger
    /// @dev Kept to one new slot, two task slots, one registry call (`commitEligibility`: two registry slots, one
    /// staking slot) and the event: 75,687 gas per transaction with a 46-character CID (18.5 gas per token at 4,096
    /// tokens), measured by tests/contracts/test_ledger.py and docs/gas.md.
    function commit(
        uint256 taskId,
        uint32 expertIndex,
        uint32 expertVersion,
        bytes32 root,
        uint64 tokenCount,
        string calldata bundleCid
    ) external returns (bytes32 id) {
        if (tokenCount == 0) revert ZeroTokens();
        if (root == bytes32(0)) revert ZeroRoot();
        if (bytes(bundleCid).length == 0) revert EmptyCid();
        TaskRecord storage t = _existingTask(taskId);
        if (t.closed) revert TaskAlreadyClosed(taskId);
        _checkEligibility(t.modelId, expertIndex, expertVersion);

        uint256 payment = uint256(tokenCount) * t.pricePerToken;
        (uint128 available, uint128 reserved) = (t.available, t.reserved);
        if (payment > available) revert InsufficientEscrow(available, payment);
        // payment <= available < 2^128, so the cast does not truncate, and reserved + payment is ETH this
        // contract holds, far below 2^128 wei. Both fields share one slot: assigned together they cost one SSTORE.
        unchecked {
            (t.available, t.reserved) = (available - uint128(payment), reserved + uint128(payment));
        }

        Commitment memory c = Commitment({
            taskId: taskId,
            node: msg.sender,
            expertIndex: expertIndex,
            expertVersion: expertVersion,
            tokenCount: tokenCount,
            postedAt: uint64(block.timestamp),
            root: root,
            fromReceipt: false
        });
        id = _record(c);
        emit CommitmentPosted(id, taskId, msg.sender, c, bundleCid);
    }

    /// @inheritdoc IResultLedger
    function postReceipt(Receipt calldata receipt, bytes calldata signature, string calldata bundleCid)
        external
        returns (bytes32 id)
    {
        if (bytes(bundleCid).length == 0) revert EmptyCid();
        TaskRecord storage t = _existingTask(receipt.taskId);
        if (receipt.modelId != t.modelId) revert ReceiptTaskMismatch(receipt.taskId, receipt.modelId);
        _checkVersion(receipt.modelId, receipt.expertIndex, receipt.expertVersion);

        bytes32 digest = receiptDigest(receipt);
        if (_receiptPosted[digest]) revert ReceiptAlreadyPosted(digest);
        (address signer, ECDSA.RecoverError recoverError,) = ECDSA.tryRecover(digest, signature);
        if (recoverError != ECDSA.RecoverError.NoError || signer != receipt.node) {
            revert InvalidSignature(receipt.node, signer);
        }
        // Only a staked signer can be slashed for what it signed; anything else would be a free-standing claim.
        if (staking.stakeOf(receipt.node) < registry.model(receipt.modelId).minNodeStake) revert NotStaked(receipt.node);
        _receiptPosted[digest] = true;

        Commitment memory c = Commitment({
            taskId: receipt.taskId,
            node: receipt.node,
            expertIndex: receipt.expertIndex,
            expertVersion: receipt.expertVersion,
            tokenCount: receipt.tokenCount,
            postedAt: uint64(block.timestamp),
            root: receipt.root,
            fromReceipt: true
        });
        id = _record(c);
        emit CommitmentPosted(id, receipt.taskId, receipt.node, c, bundleCid);
        emit ReceiptPosted(id, digest, msg.sender);
    }

    /// @inheritdoc IResultLedger
    function finalize(Commitment calldata commitment) external {
        (bytes32 id, CommitmentRecord storage r) = _postedCommitment(commitment);
        (uint256 endsAt,) = _challengeDeadline(commitment);
        if (block.timestamp < endsAt) revert ChallengeWindowOpen(endsAt);
        if (r.openDisputes != 0) revert DisputesOpen(id, r.openDisputes);

        r.status = Status.Finalized;
        uint256 payment;
        // A commitment made from a receipt reserved nothing: it exists to be challenged, never to be paid.
        if (!commitment.fromReceipt) {
            TaskRecord storage t = _tasks[commitment.taskId];
            payment = uint256(commitment.tokenCount) * t.pricePerToken;
            t.reserved -= uint128(payment);
            _claimable[commitment.node] += payment;
        }
        emit CommitmentFinalized(id, commitment.node, payment);
    }

    // ---------------------------------------------------------------- payments

    /// @inheritdoc IResultLedger
    function claim() external nonReentrant {
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert NothingToClaim();
        _claimable[msg.sender] = 0;
        emit Claimed(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------- disputes

    /// @inheritdoc IResultLedger
    function setDisputeModules(address[] calldata modules) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (_disputeModulesSet) revert DisputeModulesAlreadySet();
        _disputeModulesSet = true;
        for (uint256 i = 0; i < modules.length; ++i) {
            _disputeModules[modules[i]] = true;
        }
        emit DisputeModulesSet(modules);
    }

    /// @inheritdoc IResultLedger
    function openDispute(Commitment calldata commitment) external onlyDisputeModule returns (uint256 modelId) {
        (bytes32 id, CommitmentRecord storage r) = _postedCommitment(commitment);
        uint256 endsAt;
        (endsAt, modelId) = _challengeDeadline(commitment);
        if (block.timestamp >= endsAt) revert ChallengeWindowClosed(endsAt);
        uint32 open = r.openDisputes + 1;
        r.openDisputes = open;
        emit DisputeOpened(id, msg.sender, open);
    }

    /// @inheritdoc IResultLedger
    /// @dev Several disputes may run on one commitment (different leaves); the first fraud invalidates it and
    /// releases its escrow, later verdicts only close their dispute.
    function closeDispute(bytes32 id, bool fraud) external onlyDisputeModule {
        CommitmentRecord storage r = _commitments[id];
        uint32 open = r.openDisputes;
        if (open == 0) revert NoDisputeOpen(id);
        open -= 1;
        r.openDisputes = open;
        emit DisputeClosed(id, msg.sender, fraud, open);
        if (fraud && r.status == Status.Posted) {
            r.status = Status.Invalidated;
            emit CommitmentInvalidated(id, _releaseReservation(r));
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IResultLedger
    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    /// @inheritdoc IResultLedger
    function task(uint256 taskId) external view returns (Task memory) {
        TaskRecord storage t = _existingTask(taskId);
        return Task({
            publisher: t.publisher,
            closed: t.closed,
            modelId: t.modelId,
            pricePerToken: t.pricePerToken,
            available: t.available,
            reserved: t.reserved
        });
    }

    /// @inheritdoc IResultLedger
    function commitmentState(bytes32 id) external view returns (CommitmentState memory) {
        CommitmentRecord storage r = _commitments[id];
        return CommitmentState({status: r.status, openDisputes: r.openDisputes});
    }

    /// @inheritdoc IResultLedger
    function commitmentId(Commitment calldata commitment) external pure returns (bytes32) {
        return keccak256(abi.encode(commitment));
    }

    /// @inheritdoc IResultLedger
    function leafHash(Leaf calldata leaf) external pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(leaf))));
    }

    /// @inheritdoc IResultLedger
    function receiptDigest(Receipt calldata receipt) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    RECEIPT_TYPEHASH,
                    receipt.taskId,
                    receipt.node,
                    receipt.modelId,
                    receipt.expertIndex,
                    receipt.expertVersion,
                    receipt.requestId,
                    receipt.root,
                    receipt.tokenCount
                )
            )
        );
    }

    /// @notice Whether a receipt with this EIP-712 digest has been posted.
    function receiptPosted(bytes32 digest) external view returns (bool) {
        return _receiptPosted[digest];
    }

    /// @inheritdoc IResultLedger
    function challengeDeadline(Commitment calldata commitment) external view returns (uint256 endsAt) {
        (endsAt,) = _challengeDeadline(commitment);
    }

    /// @inheritdoc IResultLedger
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IResultLedger
    function isDisputeModule(address account) external view returns (bool) {
        return _disputeModules[account];
    }

    // ---------------------------------------------------------------- internals

    function _existingTask(uint256 taskId) private view returns (TaskRecord storage t) {
        t = _tasks[taskId];
        if (t.modelId == 0) revert UnknownTask(taskId);
    }

    function _openTaskOfCaller(uint256 taskId) private view returns (TaskRecord storage t) {
        t = _existingTask(taskId);
        if (msg.sender != t.publisher) revert NotPublisher(taskId, msg.sender);
        if (t.closed) revert TaskAlreadyClosed(taskId);
    }

    /// @dev The caller must be an active host of the expert and the version published: one registry call, which
    /// reports the first check that fails so that the matching error can be raised.
    function _checkEligibility(uint256 modelId, uint32 expertIndex, uint32 version) private view {
        IExpertRegistry.Eligibility eligibility = registry.commitEligibility(modelId, expertIndex, version, msg.sender);
        if (eligibility == IExpertRegistry.Eligibility.NotActiveHost) {
            revert NotActiveHost(modelId, expertIndex, msg.sender);
        }
        if (eligibility == IExpertRegistry.Eligibility.UnknownVersion) {
            revert UnknownVersion(modelId, expertIndex, version);
        }
    }

    /// @dev Versions start at 1; the registry's latest version of an expert without versions is 0.
    function _checkVersion(uint256 modelId, uint32 expertIndex, uint32 version) private view {
        if (version == 0 || version > registry.latestVersion(modelId, expertIndex)) {
            revert UnknownVersion(modelId, expertIndex, version);
        }
    }

    /// @dev Stores the record of a new commitment under its id.
    function _record(Commitment memory c) private returns (bytes32 id) {
        id = keccak256(abi.encode(c));
        if (_commitments[id].status != Status.None) revert CommitmentExists(id);
        _commitments[id] = CommitmentRecord({
            status: Status.Posted,
            openDisputes: 0,
            fromReceipt: c.fromReceipt,
            // task ids are sequential and were checked to exist, so they fit in 64 bits
            taskId: uint64(c.taskId),
            tokenCount: c.tokenCount
        });
    }

    /// @dev The id and record of a commitment given in full, which must be Posted.
    function _postedCommitment(Commitment calldata commitment)
        private
        view
        returns (bytes32 id, CommitmentRecord storage r)
    {
        id = keccak256(abi.encode(commitment));
        r = _commitments[id];
        Status status = r.status;
        if (status == Status.None) revert UnknownCommitment(id);
        if (status != Status.Posted) revert WrongStatus(id, status);
    }

    function _challengeDeadline(Commitment calldata commitment)
        private
        view
        returns (uint256 endsAt, uint256 modelId)
    {
        modelId = _existingTask(commitment.taskId).modelId;
        endsAt = uint256(commitment.postedAt) + registry.model(modelId).challengeWindow;
    }

    /// @dev Returns an invalidated commitment's reservation to its task, or to the publisher once the task is closed.
    function _releaseReservation(CommitmentRecord storage r) private returns (uint256 amount) {
        if (r.fromReceipt) return 0;
        TaskRecord storage t = _tasks[r.taskId];
        amount = uint256(r.tokenCount) * t.pricePerToken;
        t.reserved -= uint128(amount);
        if (t.closed) {
            _claimable[t.publisher] += amount;
        } else {
            t.available += uint128(amount);
        }
    }
}
