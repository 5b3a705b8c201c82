// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Result ledger: funded tasks, window commitments, receipts, finalisation and payment
/// @notice A commitment is stored as a single status slot keyed by the hash of its fields (see docs/protocol.md):
/// callers pass the `Commitment` back in full, which keeps a window commitment at one new storage slot.
interface IResultLedger {
    enum Status {
        None,
        Posted,
        Finalized,
        Invalidated
    }

    /// @dev The id of a commitment is keccak256(abi.encode(commitment)).
    struct Commitment {
        uint256 taskId;
        address node;
        uint32 expertIndex;
        uint32 expertVersion;
        uint64 tokenCount;
        uint64 postedAt;
        bytes32 root;
        /// @dev true when a third party posted the node's signed receipt; such a commitment is never paid
        bool fromReceipt;
    }

    /// @dev EIP-712 typed data signed by the node for every request it answers.
    struct Receipt {
        uint256 taskId;
        address node;
        uint256 modelId;
        uint32 expertIndex;
        uint32 expertVersion;
        bytes32 requestId;
        bytes32 root;
        uint64 tokenCount;
    }

    /// @dev One token's result. The leaf hash is keccak256(bytes.concat(keccak256(abi.encode(leaf)))).
    struct Leaf {
        address node;
        uint256 modelId;
        uint32 expertIndex;
        uint32 expertVersion;
        bytes32 requestId;
        uint32 tokenIndex;
        bytes32 inputHash;
        bytes32 outputHash;
    }

    struct Task {
        address publisher;
        bool closed;
        uint256 modelId;
        uint128 pricePerToken;
        /// @dev escrow not yet reserved by a commitment
        uint128 available;
        /// @dev escrow reserved by posted, not yet final commitments
        uint128 reserved;
    }

    struct CommitmentState {
        Status status;
        uint32 openDisputes;
    }

    error UnknownTask(uint256 taskId);
    error UnknownModel(uint256 modelId);
    error NotPublisher(uint256 taskId, address caller);
    error TaskAlreadyClosed(uint256 taskId);
    error ZeroAmount();
    error ZeroPrice();
    error ZeroTokens();
    error ZeroRoot();
    error EmptyCid();
    error NotActiveHost(uint256 modelId, uint32 expertIndex, address node);
    error UnknownVersion(uint256 modelId, uint32 expertIndex, uint32 version);
    error InsufficientEscrow(uint256 available, uint256 required);
    error CommitmentExists(bytes32 commitmentId);
    error UnknownCommitment(bytes32 commitmentId);
    error WrongStatus(bytes32 commitmentId, Status status);
    error ChallengeWindowOpen(uint256 endsAt);
    error ChallengeWindowClosed(uint256 endedAt);
    error DisputesOpen(bytes32 commitmentId, uint32 openDisputes);
    error ReceiptTaskMismatch(uint256 taskId, uint256 modelId);
    error ReceiptAlreadyPosted(bytes32 digest);
    error InvalidSignature(address expected, address recovered);
    error NotStaked(address node);
    error NotDisputeModule(address caller);
    error NotDeployer(address caller);
    error DisputeModulesAlreadySet();
    error NoDisputeOpen(bytes32 commitmentId);
    error NothingToClaim();
    error TransferFailed();

    event TaskCreated(uint256 indexed taskId, address indexed publisher, uint256 indexed modelId, uint256 pricePerToken, uint256 escrow);
    event TaskFunded(uint256 indexed taskId, uint256 amount, uint256 available);
    event TaskClosed(uint256 indexed taskId, uint256 refund);
    /// @notice Emitted for every window commitment; indexers rebuild the `Commitment` from it.
    event CommitmentPosted(bytes32 indexed commitmentId, uint256 indexed taskId, address indexed node, Commitment commitment, string bundleCid);
    event ReceiptPosted(bytes32 indexed commitmentId, bytes32 indexed digest, address indexed poster);
    event CommitmentFinalized(bytes32 indexed commitmentId, address indexed node, uint256 payment);
    event CommitmentInvalidated(bytes32 indexed commitmentId, uint256 releasedEscrow);
    event DisputeOpened(bytes32 indexed commitmentId, address indexed module, uint32 openDisputes);
    event DisputeClosed(bytes32 indexed commitmentId, address indexed module, bool fraud, uint32 openDisputes);
    event Claimed(address indexed account, uint256 amount);
    event DisputeModulesSet(address[] modules);

    /// @notice Opens a task for `modelId`, escrowing msg.value at `pricePerToken` wei per committed token.
    function createTask(uint256 modelId, uint128 pricePerToken) external payable returns (uint256 taskId);

    /// @notice Adds msg.value to a task's escrow. Publisher only.
    function fund(uint256 taskId) external payable;

    /// @notice Stops new commitments and credits the unreserved escrow back to the publisher. Publisher only.
    function closeTask(uint256 taskId) external;

    /// @notice Posts one Merkle root for a window of results and reserves its payment from the task's escrow.
    /// @param bundleCid IPFS CID of the window's input/output bundle (emitted, not stored)
    function commit(
        uint256 taskId,
        uint32 expertIndex,
        uint32 expertVersion,
        bytes32 root,
        uint64 tokenCount,
        string calldata bundleCid
    ) external returns (bytes32 commitmentId);

    /// @notice Posts a node's signed receipt as a (never paid) commitment so that it can be challenged. Anyone may call.
    function postReceipt(Receipt calldata receipt, bytes calldata signature, string calldata bundleCid)
        external
        returns (bytes32 commitmentId);

    /// @notice After the challenge window, with no dispute open, pays the node and makes the commitment final. Anyone may call.
    function finalize(Commitment calldata commitment) external;

    /// @notice Sends the caller everything credited to it (node payments, publisher refunds).
    function claim() external;

    /// @notice Wires the dispute modules once; callable only by the deployer, only once.
    function setDisputeModules(address[] calldata modules) external;

    /// @notice Called by a dispute module when a challenge opens: checks the commitment is Posted and inside its
    /// challenge window, and blocks its finalisation. Returns the task's model id.
    function openDispute(Commitment calldata commitment) external returns (uint256 modelId);

    /// @notice Called by a dispute module when its dispute ends. `fraud` invalidates the commitment and releases
    /// its reserved escrow back to the task.
    function closeDispute(bytes32 commitmentId, bool fraud) external;

    function taskCount() external view returns (uint256);
    function task(uint256 taskId) external view returns (Task memory);
    function commitmentState(bytes32 commitmentId) external view returns (CommitmentState memory);
    function commitmentId(Commitment calldata commitment) external pure returns (bytes32);
    function leafHash(Leaf calldata leaf) external pure returns (bytes32);
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);
    /// @notice The end of a commitment's challenge window (postedAt + the model's challengeWindow).
    function challengeDeadline(Commitment calldata commitment) external view returns (uint256);
    function claimable(address account) external view returns (uint256);
    function isDisputeModule(address account) external view returns (bool);
}
