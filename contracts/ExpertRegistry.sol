// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IExpertRegistry} from "../interfaces/IExpertRegistry.sol";
import {IStaking} from "../interfaces/IStaking.sol";

/// @title ExpertRegistry
/// @notice Models, the versions of their experts (weights CID, weights Merkle root, layer shapes) and the
/// staked nodes that host each expert. Holds no ETH.
contract ExpertRegistry is IExpertRegistry {
    /// @inheritdoc IExpertRegistry
    uint32 public constant MAX_ROW_LENGTH = 4096;
    /// @inheritdoc IExpertRegistry
    uint256 public constant MAX_LAYERS = 16;

    /// @dev Requantisation limits of docs/protocol.md section 3: M < 2^31 keeps acc * M inside int64.
    int64 private constant MAX_MULTIPLIER = type(int32).max;
    uint8 private constant MAX_SHIFT = 62;

    struct Version {
        ExpertVersion info;
        Layer[] layers;
    }

    /// @dev One storage slot per host so that `isActiveHost` costs a single storage read, and `commitEligibility`,
    /// called on every window commitment, two (this and `Expert.latestVersion`). `minStake` copies the model's
    /// minNodeStake, which never changes after registration.
    struct HostRecord {
        /// @dev Position in `Expert.hosts` plus one; zero means "not a host".
        uint128 position;
        uint128 minStake;
    }

    struct Expert {
        uint32 latestVersion;
        mapping(uint32 version => Version) versions;
        address[] hosts;
        mapping(address node => HostRecord) hostRecords;
        mapping(address node => string) endpoints;
        /// @dev The node that may publish the expert's next versions besides the owner (issue 5 training); zero: none.
        address trainer;
    }

    /// @notice The stake that qualifies hosts (`minNodeStake` of each model).
    IStaking public immutable staking;
    /// @inheritdoc IExpertRegistry
    uint64 public immutable longestDispute;

    uint256 private _modelCount;
    mapping(uint256 modelId => Model) private _models;
    mapping(uint256 modelId => mapping(uint32 expertIndex => Expert)) private _experts;

    modifier onlyModelOwner(uint256 modelId) {
        address owner = _models[modelId].owner;
        if (owner == address(0)) revert UnknownModel(modelId);
        if (msg.sender != owner) revert NotModelOwner(modelId, msg.sender);
        _;
    }

    /// @param staking_ the stake that hosts must hold
    /// @param longestDispute_ the longest dispute any dispute module can run, in seconds: every model's challenge
    /// window plus this must stay below the staking unbonding delay, so that a node is slashable until it is settled.
    constructor(IStaking staking_, uint64 longestDispute_) {
        if (address(staking_) == address(0)) revert ZeroAddress();
        staking = staking_;
        longestDispute = longestDispute_;
    }

    // ---------------------------------------------------------------- models

    /// @inheritdoc IExpertRegistry
    function registerModel(ModelParams calldata params) external returns (uint256 modelId) {
        if (params.expertCount == 0) revert ZeroExperts();
        if (bytes(params.gateCid).length == 0) revert EmptyCid();
        _checkChallengeWindow(params.challengeWindow);
        if (params.minNodeStake == 0 || params.minValidatorStake == 0) revert ZeroMinimumStake();
        bool exact = params.mode == Mode.ExactInt8;
        if (exact ? params.tolerance != 0 : params.tolerance == 0) revert InvalidTolerance(params.tolerance);

        modelId = ++_modelCount;
        _models[modelId] = Model({
            owner: msg.sender,
            mode: params.mode,
            expertCount: params.expertCount,
            tolerance: params.tolerance,
            challengeWindow: params.challengeWindow,
            minNodeStake: params.minNodeStake,
            minValidatorStake: params.minValidatorStake,
            gateCid: params.gateCid,
            gateRoot: params.gateRoot
        });
        emit ModelRegistered(modelId, msg.sender, params.mode, params.expertCount, params.gateCid, params.gateRoot);
    }

    /// @inheritdoc IExpertRegistry
    function setGate(uint256 modelId, string calldata gateCid, bytes32 gateRoot) external onlyModelOwner(modelId) {
        if (bytes(gateCid).length == 0) revert EmptyCid();
        Model storage m = _models[modelId];
        m.gateCid = gateCid;
        m.gateRoot = gateRoot;
        emit GateUpdated(modelId, gateCid, gateRoot);
    }

    /// @inheritdoc IExpertRegistry
    function transferModelOwnership(uint256 modelId, address newOwner) external onlyModelOwner(modelId) {
        if (newOwner == address(0)) revert ZeroAddress();
        _models[modelId].owner = newOwner;
        emit ModelOwnershipTransferred(modelId, msg.sender, newOwner);
    }

    // ---------------------------------------------------------------- experts

    /// @inheritdoc IExpertRegistry
    function publishExpert(
        uint256 modelId,
        uint32 expertIndex,
        string calldata weightsCid,
        bytes32 weightsRoot,
        Layer[] calldata layers_
    ) external returns (uint32 version) {
        Model storage m = _knownExpertModel(modelId, expertIndex);
        Expert storage e = _experts[modelId][expertIndex];
        bool byTrainer = msg.sender != m.owner;
        if (byTrainer && (e.trainer == address(0) || msg.sender != e.trainer)) {
            revert NotOwnerOrTrainer(modelId, expertIndex, msg.sender);
        }
        if (bytes(weightsCid).length == 0) revert EmptyCid();
        // The fraud proof checks weight rows against this root, so an exact expert cannot go without one.
        if (m.mode == Mode.ExactInt8 && weightsRoot == bytes32(0)) revert ZeroRoot();
        _checkLayers(m.mode, layers_);
        // Training changes weights, never the architecture: the owner alone may reshape an expert.
        if (byTrainer) _checkSameShapes(modelId, expertIndex, e, layers_);

        version = ++e.latestVersion;
        Version storage v = e.versions[version];
        v.info = ExpertVersion({weightsCid: weightsCid, weightsRoot: weightsRoot, publishedAt: uint64(block.timestamp)});
        for (uint256 i = 0; i < layers_.length; ++i) {
            v.layers.push(layers_[i]);
        }
        emit ExpertPublished(modelId, expertIndex, version, weightsCid, weightsRoot);
    }

    /// @inheritdoc IExpertRegistry
    function setTrainer(uint256 modelId, uint32 expertIndex, address trainer) external onlyModelOwner(modelId) {
        if (expertIndex >= _models[modelId].expertCount) revert UnknownExpert(modelId, expertIndex);
        _experts[modelId][expertIndex].trainer = trainer;
        emit TrainerSet(modelId, expertIndex, trainer);
    }

    // ---------------------------------------------------------------- hosts

    /// @inheritdoc IExpertRegistry
    function registerHost(uint256 modelId, uint32 expertIndex, string calldata endpoint) external {
        Model storage m = _knownExpertModel(modelId, expertIndex);
        Expert storage e = _experts[modelId][expertIndex];
        if (e.latestVersion == 0) revert UnknownVersion(modelId, expertIndex, 0);
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        if (e.hostRecords[msg.sender].position != 0) revert AlreadyHost(modelId, expertIndex, msg.sender);
        uint256 stake = staking.stakeOf(msg.sender);
        if (stake < m.minNodeStake) revert InsufficientStake(msg.sender, stake, m.minNodeStake);

        e.hosts.push(msg.sender);
        e.hostRecords[msg.sender] = HostRecord({position: uint128(e.hosts.length), minStake: m.minNodeStake});
        e.endpoints[msg.sender] = endpoint;
        emit HostRegistered(modelId, expertIndex, msg.sender, endpoint);
    }

    /// @inheritdoc IExpertRegistry
    function unregisterHost(uint256 modelId, uint32 expertIndex) external {
        Expert storage e = _experts[modelId][expertIndex];
        uint256 position = e.hostRecords[msg.sender].position;
        if (position == 0) revert NotHost(modelId, expertIndex, msg.sender);

        // Swap and pop: move the last host into the leaver's place so the array stays dense.
        uint256 lastIndex = e.hosts.length - 1;
        if (position - 1 != lastIndex) {
            address moved = e.hosts[lastIndex];
            e.hosts[position - 1] = moved;
            e.hostRecords[moved].position = uint128(position);
        }
        e.hosts.pop();
        delete e.hostRecords[msg.sender];
        delete e.endpoints[msg.sender];
        emit HostUnregistered(modelId, expertIndex, msg.sender);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IExpertRegistry
    function modelCount() external view returns (uint256) {
        return _modelCount;
    }

    /// @inheritdoc IExpertRegistry
    function model(uint256 modelId) external view returns (Model memory) {
        return _knownModel(modelId);
    }

    /// @inheritdoc IExpertRegistry
    /// @dev Zero while no version is published.
    function latestVersion(uint256 modelId, uint32 expertIndex) external view returns (uint32) {
        _knownExpertModel(modelId, expertIndex);
        return _experts[modelId][expertIndex].latestVersion;
    }

    /// @inheritdoc IExpertRegistry
    function expertVersion(uint256 modelId, uint32 expertIndex, uint32 version)
        external
        view
        returns (ExpertVersion memory)
    {
        return _version(modelId, expertIndex, version).info;
    }

    /// @inheritdoc IExpertRegistry
    function layers(uint256 modelId, uint32 expertIndex, uint32 version) external view returns (Layer[] memory) {
        return _version(modelId, expertIndex, version).layers;
    }

    /// @inheritdoc IExpertRegistry
    function hosts(uint256 modelId, uint32 expertIndex) external view returns (address[] memory) {
        _knownExpertModel(modelId, expertIndex);
        return _experts[modelId][expertIndex].hosts;
    }

    /// @inheritdoc IExpertRegistry
    /// @dev Empty for a node that does not host the expert.
    function endpointOf(uint256 modelId, uint32 expertIndex, address node) external view returns (string memory) {
        return _experts[modelId][expertIndex].endpoints[node];
    }

    /// @inheritdoc IExpertRegistry
    function trainerOf(uint256 modelId, uint32 expertIndex) external view returns (address) {
        _knownExpertModel(modelId, expertIndex);
        return _experts[modelId][expertIndex].trainer;
    }

    /// @inheritdoc IExpertRegistry
    function isHost(uint256 modelId, uint32 expertIndex, address node) external view returns (bool) {
        return _experts[modelId][expertIndex].hostRecords[node].position != 0;
    }

    /// @inheritdoc IExpertRegistry
    function isActiveHost(uint256 modelId, uint32 expertIndex, address node) external view returns (bool) {
        return _isActiveHost(_experts[modelId][expertIndex], node);
    }

    /// @inheritdoc IExpertRegistry
    /// @dev Reads neither the model nor the expert count: a host record exists only for a known expert with a
    /// published version (`registerHost` checks both), so the host check covers them.
    function commitEligibility(uint256 modelId, uint32 expertIndex, uint32 expertVersion, address node)
        external
        view
        returns (Eligibility)
    {
        Expert storage e = _experts[modelId][expertIndex];
        if (!_isActiveHost(e, node)) return Eligibility.NotActiveHost;
        if (expertVersion == 0 || expertVersion > e.latestVersion) return Eligibility.UnknownVersion;
        return Eligibility.Eligible;
    }

    // ---------------------------------------------------------------- internal

    function _knownModel(uint256 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.owner == address(0)) revert UnknownModel(modelId);
    }

    function _knownExpertModel(uint256 modelId, uint32 expertIndex) private view returns (Model storage m) {
        m = _knownModel(modelId);
        if (expertIndex >= m.expertCount) revert UnknownExpert(modelId, expertIndex);
    }

    function _isActiveHost(Expert storage e, address node) private view returns (bool) {
        HostRecord memory record = e.hostRecords[node];
        return record.position != 0 && staking.stakeOf(node) >= record.minStake;
    }

    function _version(uint256 modelId, uint32 expertIndex, uint32 version) private view returns (Version storage) {
        _knownExpertModel(modelId, expertIndex);
        Expert storage e = _experts[modelId][expertIndex];
        if (version == 0 || version > e.latestVersion) revert UnknownVersion(modelId, expertIndex, version);
        return e.versions[version];
    }

    /// @dev A trainer's version must have the latest version's layers, layer by layer (same dimensions; the
    /// requantisation fields are checked equal too, so an exact expert cannot be re-scaled by its trainer).
    function _checkSameShapes(uint256 modelId, uint32 expertIndex, Expert storage e, Layer[] calldata layers_)
        private
        view
    {
        if (e.latestVersion == 0) revert UnknownVersion(modelId, expertIndex, 0);
        Layer[] storage current = e.versions[e.latestVersion].layers;
        if (current.length != layers_.length) revert TrainerShapeMismatch(layers_.length);
        for (uint256 i = 0; i < layers_.length; ++i) {
            Layer storage a = current[i];
            Layer calldata b = layers_[i];
            if (
                a.inDim != b.inDim || a.outDim != b.outDim || a.multiplier != b.multiplier || a.shift != b.shift
                    || a.relu != b.relu
            ) revert TrainerShapeMismatch(i);
        }
    }

    /// @dev challengeWindow + longestDispute < unbondingDelay, i.e. 0 < window <= unbondingDelay - longestDispute - 1.
    function _checkChallengeWindow(uint64 window) private view {
        uint256 delay = staking.unbondingDelay();
        uint256 maxWindow = delay > uint256(longestDispute) + 1 ? delay - longestDispute - 1 : 0;
        if (window == 0 || window > maxWindow) {
            revert InvalidChallengeWindow(window, maxWindow > type(uint64).max ? type(uint64).max : uint64(maxWindow));
        }
    }

    /// @dev Layers must chain (each input is the previous output) and respect the limits of the on-chain
    /// re-execution: rows of at most MAX_ROW_LENGTH weights, requantisation parameters of docs/protocol.md section 3.
    function _checkLayers(Mode mode, Layer[] calldata layers_) private pure {
        if (layers_.length == 0 || layers_.length > MAX_LAYERS) revert InvalidLayerCount(layers_.length);
        for (uint256 i = 0; i < layers_.length; ++i) {
            Layer calldata layer = layers_[i];
            if (layer.inDim == 0 || layer.outDim == 0) revert InvalidLayer(i);
            if (layer.inDim > MAX_ROW_LENGTH) revert RowTooLong(i, layer.inDim, MAX_ROW_LENGTH);
            if (i > 0 && layer.inDim != layers_[i - 1].outDim) {
                revert LayerShapeMismatch(i, layers_[i - 1].outDim, layer.inDim);
            }
            if (mode == Mode.ExactInt8) {
                if (layer.multiplier < 1 || layer.multiplier > MAX_MULTIPLIER || layer.shift > MAX_SHIFT) {
                    revert InvalidLayer(i);
                }
            } else if (layer.multiplier != 0 || layer.shift != 0 || layer.relu) {
                revert InvalidLayer(i);
            }
        }
    }
}
