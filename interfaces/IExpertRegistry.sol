// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Registry of models, expert versions and the nodes that host them
interface IExpertRegistry {
    /// @dev ExactInt8 experts are checked by the single-row fraud proof; Float experts by a committee vote.
    enum Mode {
        ExactInt8,
        Float
    }

    /// @dev One layer of an exact expert: y = clamp(relu?((W x + b) * multiplier + 2^(shift-1)) >> shift), -128, 127).
    /// For Float experts only inDim/outDim are meaningful and multiplier/shift/relu must be zero/false.
    struct Layer {
        uint32 inDim;
        uint32 outDim;
        int64 multiplier;
        uint8 shift;
        bool relu;
    }

    /// @dev What `commitEligibility` finds, in the order it checks: hosting first, then the version.
    enum Eligibility {
        Eligible,
        NotActiveHost,
        UnknownVersion
    }

    struct Model {
        address owner;
        Mode mode;
        uint32 expertCount;
        /// @dev Float mode: maximum absolute error per output element, in millionths. Zero for ExactInt8.
        uint32 tolerance;
        uint64 challengeWindow;
        uint128 minNodeStake;
        uint128 minValidatorStake;
        string gateCid;
        bytes32 gateRoot;
    }

    struct ExpertVersion {
        string weightsCid;
        bytes32 weightsRoot;
        uint64 publishedAt;
    }

    /// @dev Parameters of registerModel (a struct keeps the call readable and the stack shallow).
    struct ModelParams {
        Mode mode;
        uint32 expertCount;
        uint32 tolerance;
        uint64 challengeWindow;
        uint128 minNodeStake;
        uint128 minValidatorStake;
        string gateCid;
        bytes32 gateRoot;
    }

    error UnknownModel(uint256 modelId);
    error UnknownExpert(uint256 modelId, uint32 expertIndex);
    error UnknownVersion(uint256 modelId, uint32 expertIndex, uint32 version);
    error NotModelOwner(uint256 modelId, address caller);
    error ZeroExperts();
    error ZeroAddress();
    error EmptyCid();
    error ZeroRoot();
    error InvalidChallengeWindow(uint64 window, uint64 maxWindow);
    error InvalidTolerance(uint32 tolerance);
    error ZeroMinimumStake();
    error InvalidLayerCount(uint256 count);
    error InvalidLayer(uint256 layer);
    error RowTooLong(uint256 layer, uint32 inDim, uint32 maxRowLength);
    error LayerShapeMismatch(uint256 layer, uint32 expectedInDim, uint32 inDim);
    error InsufficientStake(address node, uint256 stake, uint256 required);
    error AlreadyHost(uint256 modelId, uint32 expertIndex, address node);
    error NotHost(uint256 modelId, uint32 expertIndex, address node);
    error EmptyEndpoint();
    /// @dev `publishExpert` by a caller that is neither the model owner nor the expert's trainer.
    error NotOwnerOrTrainer(uint256 modelId, uint32 expertIndex, address caller);
    /// @dev A trainer's version differs from the latest version at layer `layer` (or, when `layer` equals the
    /// latest version's layer count or more, in the number of layers).
    error TrainerShapeMismatch(uint256 layer);

    event ModelRegistered(uint256 indexed modelId, address indexed owner, Mode mode, uint32 expertCount, string gateCid, bytes32 gateRoot);
    event GateUpdated(uint256 indexed modelId, string gateCid, bytes32 gateRoot);
    event ModelOwnershipTransferred(uint256 indexed modelId, address indexed previousOwner, address indexed newOwner);
    event ExpertPublished(uint256 indexed modelId, uint32 indexed expertIndex, uint32 version, string weightsCid, bytes32 weightsRoot);
    event HostRegistered(uint256 indexed modelId, uint32 indexed expertIndex, address indexed node, string endpoint);
    event HostUnregistered(uint256 indexed modelId, uint32 indexed expertIndex, address indexed node);
    event TrainerSet(uint256 indexed modelId, uint32 indexed expertIndex, address indexed trainer);

    /// @notice Registers a model owned by the caller. Ids start at 1.
    function registerModel(ModelParams calldata params) external returns (uint256 modelId);

    /// @notice Points the model at a new gate (its history is in GateUpdated events). Owner only.
    function setGate(uint256 modelId, string calldata gateCid, bytes32 gateRoot) external;

    /// @notice Hands the model to `newOwner`. Owner only.
    function transferModelOwnership(uint256 modelId, address newOwner) external;

    /// @notice Publishes a new version of an expert (versions start at 1; older versions stay readable). By the model
    /// owner, or by the expert's trainer (`setTrainer`), whose version must keep the latest version's layers exactly
    /// (a trainer changes weights, never shapes: `TrainerShapeMismatch`) and needs a published version to train from.
    /// @param weightsRoot OpenZeppelin-style Merkle root over the rows of every layer (docs/protocol.md).
    function publishExpert(
        uint256 modelId,
        uint32 expertIndex,
        string calldata weightsCid,
        bytes32 weightsRoot,
        Layer[] calldata layers
    ) external returns (uint32 version);

    /// @notice Names the node that trains an expert (docs/protocol.md section 11): it may publish the expert's next
    /// versions. `address(0)` clears it. Owner only.
    function setTrainer(uint256 modelId, uint32 expertIndex, address trainer) external;

    /// @notice The caller, staked at least the model's minNodeStake, announces that it serves an expert at `endpoint`.
    function registerHost(uint256 modelId, uint32 expertIndex, string calldata endpoint) external;

    /// @notice The caller stops hosting an expert.
    function unregisterHost(uint256 modelId, uint32 expertIndex) external;

    function modelCount() external view returns (uint256);
    function model(uint256 modelId) external view returns (Model memory);
    function latestVersion(uint256 modelId, uint32 expertIndex) external view returns (uint32);
    function expertVersion(uint256 modelId, uint32 expertIndex, uint32 version) external view returns (ExpertVersion memory);
    function layers(uint256 modelId, uint32 expertIndex, uint32 version) external view returns (Layer[] memory);
    function hosts(uint256 modelId, uint32 expertIndex) external view returns (address[] memory);
    function endpointOf(uint256 modelId, uint32 expertIndex, address node) external view returns (string memory);
    /// @notice The expert's trainer, zero when none is named.
    function trainerOf(uint256 modelId, uint32 expertIndex) external view returns (address);
    function isHost(uint256 modelId, uint32 expertIndex, address node) external view returns (bool);
    /// @notice A host whose active stake still covers the model's minNodeStake (slashed or unbonded nodes are not).
    function isActiveHost(uint256 modelId, uint32 expertIndex, address node) external view returns (bool);
    /// @notice Whether `node` may commit results of `expertVersion` of an expert: it must be an active host of the
    /// expert (`isActiveHost`) and the version must be published (1 <= expertVersion <= latestVersion). Never reverts:
    /// an unknown model or expert has no hosts, so it gives `NotActiveHost`.
    /// @dev The ResultLedger's one registry call per window commitment; the status, rather than a bool, lets the
    /// caller raise the matching error.
    function commitEligibility(uint256 modelId, uint32 expertIndex, uint32 expertVersion, address node)
        external
        view
        returns (Eligibility);
    /// @notice The longest dispute any dispute module can run, in seconds (fixed at deployment).
    function longestDispute() external view returns (uint64);
    function MAX_ROW_LENGTH() external view returns (uint32);
    function MAX_LAYERS() external view returns (uint256);
}
