// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IExpertRegistry} from "../interfaces/IExpertRegistry.sol";
import {IFraudProof} from "../interfaces/IFraudProof.sol";
import {IResultLedger} from "../interfaces/IResultLedger.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {DisputeModule} from "./DisputeModule.sol";
import {Int8Math} from "./Int8Math.sol";

/// @title Exact fraud proof for int8 experts (docs/protocol.md, section 5)
/// @notice A challenger bonds one committed token; the node answers with every layer's activations for it; the
/// challenger names one output row of one layer, which is checked against the expert's registered weights root and
/// recomputed with Int8Math. A wrong row (or a silent node) slashes the node's whole stake: the challenger gets its
/// bond back plus half of the slash and the rest is burned. A correct row (or a silent challenger) gives the bond to
/// the node. On-chain cost is one dot product, whatever the size of the expert.
/// @dev Money leaves only through `claim` (pull payments) and the burn (DisputeModule). Slashed ETH arrives from
/// Staking.
contract FraudProof is IFraudProof, DisputeModule {
    /// @dev The state of a dispute in five slots (a challenge writes all of them, so each one costs 22k gas). The bond
    /// is the same for every dispute (`bond`); registry model ids are sequential from 1, so 32 bits hold them.
    struct DisputeRecord {
        bytes32 commitmentId;
        address challenger;
        uint64 deadline;
        Phase phase;
        /// @dev the expert's layer count, set by `respond`
        uint8 layerCount;
        address node;
        uint32 modelId;
        uint32 expertIndex;
        uint32 expertVersion;
        bytes32 inputHash;
        bytes32 outputHash;
    }

    /// @inheritdoc IFraudProof
    uint64 public immutable responseWindow;
    /// @inheritdoc IFraudProof
    uint64 public immutable proofWindow;

    uint256 private _disputeCount;
    mapping(uint256 disputeId => DisputeRecord) private _disputes;
    /// @dev keccak256 of the node's activation of each layer but the last, whose hash is the leaf's outputHash.
    mapping(uint256 disputeId => mapping(uint256 layer => bytes32)) private _hiddenHashes;

    /// @dev Deployed after the other three; `Staking.setSlashers` and `ResultLedger.setDisputeModules` must then name
    /// this contract (docs/protocol.md 1).
    /// @param bond_ the challenger's bond, in wei
    /// @param responseWindow_ seconds the node has to respond to a challenge
    /// @param proofWindow_ seconds the challenger has to prove a row after the response
    constructor(
        IResultLedger ledger_,
        IExpertRegistry registry_,
        IStaking staking_,
        uint256 bond_,
        uint64 responseWindow_,
        uint64 proofWindow_
    ) DisputeModule(ledger_, registry_, staking_, bond_) {
        responseWindow = responseWindow_;
        proofWindow = proofWindow_;
    }

    // ---------------------------------------------------------------- dispute steps

    /// @inheritdoc IFraudProof
    /// @dev The ledger's `openDispute` checks that the commitment is Posted and inside its challenge window.
    function challenge(
        IResultLedger.Commitment calldata commitment,
        IResultLedger.Leaf calldata leaf,
        bytes32[] calldata proof,
        bytes calldata input
    ) external payable returns (uint256 disputeId) {
        _checkBond();
        uint256 modelId = ledger.task(commitment.taskId).modelId;
        if (registry.model(modelId).mode != IExpertRegistry.Mode.ExactInt8) revert NotExactModel(modelId);
        (bytes32 commitmentId, bytes32 leafHash) = _checkLeaf(commitment, leaf, proof, modelId);
        if (keccak256(input) != leaf.inputHash) revert InputHashMismatch();
        uint256 inDim = registry.layers(modelId, leaf.expertIndex, leaf.expertVersion)[0].inDim;
        if (input.length != inDim) revert InputLengthMismatch(input.length, inDim);

        disputeId = ++_disputeCount;
        _setLeafDispute(commitmentId, leafHash, disputeId);
        _disputes[disputeId] = DisputeRecord({
            commitmentId: commitmentId,
            challenger: msg.sender,
            deadline: uint64(block.timestamp) + responseWindow,
            phase: Phase.AwaitingResponse,
            layerCount: 0,
            node: leaf.node,
            expertIndex: leaf.expertIndex,
            expertVersion: leaf.expertVersion,
            modelId: SafeCast.toUint32(modelId),
            inputHash: leaf.inputHash,
            outputHash: leaf.outputHash
        });
        emit Challenged(disputeId, commitmentId, msg.sender, leaf.node, leafHash, input);

        ledger.openDispute(commitment);
        staking.lock(leaf.node);
    }

    /// @inheritdoc IFraudProof
    function respond(uint256 disputeId, bytes[] calldata activations) external {
        DisputeRecord storage d = _openDispute(disputeId, Phase.AwaitingResponse);
        if (msg.sender != d.node) revert NotNode(msg.sender);

        IExpertRegistry.Layer[] memory layers = registry.layers(d.modelId, d.expertIndex, d.expertVersion);
        uint256 last = layers.length - 1;
        if (activations.length != layers.length) revert WrongLayerCount(activations.length, layers.length);
        for (uint256 i = 0; i <= last; ++i) {
            if (activations[i].length != layers[i].outDim) {
                revert ActivationLengthMismatch(i, activations[i].length, layers[i].outDim);
            }
        }
        if (keccak256(activations[last]) != d.outputHash) revert OutputHashMismatch();
        for (uint256 i = 0; i < last; ++i) {
            _hiddenHashes[disputeId][i] = keccak256(activations[i]);
        }

        // The registry allows at most MAX_LAYERS (16) layers.
        d.layerCount = uint8(layers.length);
        d.phase = Phase.AwaitingProof;
        d.deadline = uint64(block.timestamp) + proofWindow;
        emit Responded(disputeId, activations);
    }

    /// @inheritdoc IFraudProof
    /// @dev Errors: `RowLengthMismatch` refuses a row that is not exactly the layer's inDim long (so oversized rows
    /// never reach the hashing or the dot product); `ActivationHashMismatch(layer)` names the layer being proven when
    /// its input or output is not what was committed (layer 0's input is the challenged token's input).
    function prove(
        uint256 disputeId,
        uint32 layer,
        uint32 row,
        bytes calldata layerInput,
        bytes calldata layerOutput,
        bytes calldata rowWeights,
        int32 bias,
        bytes32[] calldata rowProof
    ) external {
        // The work is split into helpers and a block because the eleven calldata arguments leave little room on the
        // stack.
        int8 claimed;
        int8 recomputed;
        {
            IExpertRegistry.Layer memory l = _provableLayer(disputeId, layer, row, rowWeights.length);
            _checkActivations(disputeId, layer, layerInput, layerOutput);
            _checkRowLeaf(disputeId, layer, row, bias, rowWeights, rowProof);
            // The hashes matched, so layerOutput has the layer's outDim > row bytes.
            claimed = int8(uint8(layerOutput[row]));
            recomputed = _recompute(l, rowWeights, layerInput, bias);
        }
        _settle(disputeId, layer, row, claimed, recomputed);
    }

    /// @inheritdoc IFraudProof
    function timeout(uint256 disputeId) external {
        DisputeRecord storage d = _existingDispute(disputeId);
        Phase phase = d.phase;
        if (phase != Phase.AwaitingResponse && phase != Phase.AwaitingProof) revert WrongPhase(disputeId, phase);
        if (block.timestamp <= d.deadline) revert DeadlineNotReached(d.deadline);

        emit TimedOut(disputeId, phase);
        if (phase == Phase.AwaitingResponse) {
            _resolveFraud(disputeId);
        } else {
            _resolveHonest(disputeId);
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFraudProof
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    /// @inheritdoc IFraudProof
    function dispute(uint256 disputeId) external view returns (Dispute memory) {
        DisputeRecord storage d = _existingDispute(disputeId);
        return Dispute({
            commitmentId: d.commitmentId,
            challenger: d.challenger,
            node: d.node,
            modelId: d.modelId,
            expertIndex: d.expertIndex,
            expertVersion: d.expertVersion,
            phase: d.phase,
            deadline: d.deadline,
            bond: bond,
            inputHash: d.inputHash,
            outputHash: d.outputHash
        });
    }

    /// @inheritdoc IFraudProof
    function activationHashes(uint256 disputeId) external view returns (bytes32[] memory hashes) {
        DisputeRecord storage d = _existingDispute(disputeId);
        hashes = new bytes32[](d.layerCount);
        for (uint256 i = 0; i < hashes.length; ++i) {
            hashes[i] = _activationHash(disputeId, i);
        }
    }

    // ---------------------------------------------------------------- internals

    /// @dev A leaf stays closed to new challenges while its dispute runs and after it proved fraud (the commitment is
    /// then invalidated anyway). After the challenger lost it is open again: one matching row does not show the whole
    /// token right, and a challenger (perhaps the node itself) that stays silent must not shield a leaf from everyone.
    function _isUnderChallenge(uint256 disputeId) internal view override returns (bool) {
        return disputeId != 0 && _disputes[disputeId].phase != Phase.ChallengerLost;
    }

    function _existingDispute(uint256 disputeId) private view returns (DisputeRecord storage d) {
        if (disputeId == 0 || disputeId > _disputeCount) revert UnknownDispute(disputeId);
        d = _disputes[disputeId];
    }

    /// @dev A dispute in `phase` whose deadline has not passed (a step at the deadline itself is still in time).
    function _openDispute(uint256 disputeId, Phase phase) private view returns (DisputeRecord storage d) {
        d = _existingDispute(disputeId);
        if (d.phase != phase) revert WrongPhase(disputeId, d.phase);
        if (block.timestamp > d.deadline) revert DeadlinePassed(d.deadline);
    }

    /// @dev Checks that the caller may prove now and that `row` of `layer` exists and has `rowLength` weights.
    function _provableLayer(uint256 disputeId, uint32 layer, uint32 row, uint256 rowLength)
        private
        view
        returns (IExpertRegistry.Layer memory l)
    {
        DisputeRecord storage d = _openDispute(disputeId, Phase.AwaitingProof);
        if (msg.sender != d.challenger) revert NotChallenger(msg.sender);
        IExpertRegistry.Layer[] memory layers = registry.layers(d.modelId, d.expertIndex, d.expertVersion);
        if (layer >= layers.length) revert LayerOutOfRange(layer);
        l = layers[layer];
        if (row >= l.outDim) revert RowOutOfRange(row);
        if (rowLength != l.inDim) revert RowLengthMismatch(rowLength, l.inDim);
    }

    /// @dev The layer's input and output must be what the dispute committed to: layer 0's input is the token input,
    /// any other layer's input is the node's previous activation.
    function _checkActivations(uint256 disputeId, uint32 layer, bytes calldata layerInput, bytes calldata layerOutput)
        private
        view
    {
        bytes32 inputHash = layer == 0 ? _disputes[disputeId].inputHash : _activationHash(disputeId, layer - 1);
        if (keccak256(layerInput) != inputHash || keccak256(layerOutput) != _activationHash(disputeId, layer)) {
            revert ActivationHashMismatch(layer);
        }
    }

    /// @dev The hash of the node's activation of `layer` (< layerCount): the last one is the leaf's outputHash.
    function _activationHash(uint256 disputeId, uint256 layer) private view returns (bytes32) {
        DisputeRecord storage d = _disputes[disputeId];
        return layer + 1 == d.layerCount ? d.outputHash : _hiddenHashes[disputeId][layer];
    }

    /// @dev The weight row leaf (docs/protocol.md 2.2) must be under the expert version's registered weights root.
    function _checkRowLeaf(
        uint256 disputeId,
        uint32 layer,
        uint32 row,
        int32 bias,
        bytes calldata rowWeights,
        bytes32[] calldata rowProof
    ) private view {
        DisputeRecord storage d = _disputes[disputeId];
        bytes32 root = registry.expertVersion(d.modelId, d.expertIndex, d.expertVersion).weightsRoot;
        bytes32 rowLeaf = keccak256(bytes.concat(keccak256(abi.encode(layer, row, bias, rowWeights))));
        if (!MerkleProof.verifyCalldata(rowProof, root, rowLeaf)) revert InvalidRowProof();
    }

    /// @dev The row's output; the checks before made layerInput as long as the row (the layer's inDim).
    function _recompute(
        IExpertRegistry.Layer memory l,
        bytes calldata rowWeights,
        bytes calldata layerInput,
        int32 bias
    ) private pure returns (int8) {
        return Int8Math.rowOutput(rowWeights, layerInput, bias, l.multiplier, l.shift, l.relu);
    }

    /// @dev A row that differs from the node's claim proves fraud; a matching row ends the dispute for the node.
    function _settle(uint256 disputeId, uint32 layer, uint32 row, int8 claimed, int8 recomputed) private {
        emit RowChecked(disputeId, layer, row, claimed, recomputed);
        if (claimed != recomputed) {
            _resolveFraud(disputeId);
        } else {
            _resolveHonest(disputeId);
        }
    }

    /// @dev The node loses: its whole slashable stake is taken; the challenger is credited its bond and half of the
    /// slash, the rest is burned; the commitment is invalidated and the node unlocked.
    function _resolveFraud(uint256 disputeId) private {
        DisputeRecord storage d = _disputes[disputeId];
        d.phase = Phase.NodeSlashed;
        address node = d.node;
        // Staking sends the amount taken to this contract (see `receive`); asking for everything takes all there is.
        uint256 slashed = staking.slash(node, type(uint256).max);
        uint256 reward = bond + slashed / 2;
        uint256 burned = slashed - slashed / 2;
        _credit(d.challenger, reward);
        emit Resolved(disputeId, true, slashed, reward, 0);

        ledger.closeDispute(d.commitmentId, true);
        staking.unlock(node);
        _burn(burned);
    }

    /// @dev The challenger loses: its bond is credited to the node, the node unlocked.
    function _resolveHonest(uint256 disputeId) private {
        DisputeRecord storage d = _disputes[disputeId];
        d.phase = Phase.ChallengerLost;
        _credit(d.node, bond);
        emit Resolved(disputeId, false, 0, 0, bond);

        ledger.closeDispute(d.commitmentId, false);
        staking.unlock(d.node);
    }
}
