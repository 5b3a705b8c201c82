// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IDisputeModule} from "./IDisputeModule.sol";
import {IResultLedger} from "./IResultLedger.sol";

/// @title Fraud proof for exact int8 experts (docs/protocol.md, "Exact dispute")
/// @notice challenge -> node responds with every layer's activations -> challenger names one row, which is
/// recomputed on chain against the expert's registered weights root. Silence loses on either side.
/// @dev The errors, event and functions shared with CommitteeDispute (bond, claims, leaf checks) are in IDisputeModule.
interface IFraudProof is IDisputeModule {
    enum Phase {
        None,
        AwaitingResponse,
        AwaitingProof,
        NodeSlashed,
        ChallengerLost
    }

    struct Dispute {
        bytes32 commitmentId;
        address challenger;
        address node;
        uint256 modelId;
        uint32 expertIndex;
        uint32 expertVersion;
        Phase phase;
        uint64 deadline;
        uint256 bond;
        bytes32 inputHash;
        bytes32 outputHash;
    }

    error NotExactModel(uint256 modelId);
    error InputHashMismatch();
    error InputLengthMismatch(uint256 length, uint256 expected);
    error UnknownDispute(uint256 disputeId);
    error WrongPhase(uint256 disputeId, Phase phase);
    error NotNode(address caller);
    error NotChallenger(address caller);
    error DeadlinePassed(uint256 deadline);
    error DeadlineNotReached(uint256 deadline);
    error WrongLayerCount(uint256 count, uint256 expected);
    error ActivationLengthMismatch(uint256 layer, uint256 length, uint256 expected);
    error OutputHashMismatch();
    error LayerOutOfRange(uint256 layer);
    error RowOutOfRange(uint256 row);
    error ActivationHashMismatch(uint256 layer);
    error RowLengthMismatch(uint256 length, uint256 expected);
    error InvalidRowProof();

    event Challenged(uint256 indexed disputeId, bytes32 indexed commitmentId, address indexed challenger, address node, bytes32 leaf, bytes input);
    /// @notice The node's intermediate activations, one int8 byte string per layer (the last is the output).
    event Responded(uint256 indexed disputeId, bytes[] activations);
    event RowChecked(uint256 indexed disputeId, uint256 layer, uint256 row, int8 claimed, int8 recomputed);
    /// @notice fraud == true: node slashed, challenger paid; false: challenger's bond went to the node.
    event Resolved(uint256 indexed disputeId, bool fraud, uint256 slashed, uint256 challengerReward, uint256 bondToNode);
    event TimedOut(uint256 indexed disputeId, Phase phase);

    /// @notice Challenges one token of a commitment of an exact model. msg.value must equal `bond()`.
    /// @param input the token's int8 input (must hash to leaf.inputHash)
    function challenge(
        IResultLedger.Commitment calldata commitment,
        IResultLedger.Leaf calldata leaf,
        bytes32[] calldata proof,
        bytes calldata input
    ) external payable returns (uint256 disputeId);

    /// @notice The challenged node answers with the int8 output of every layer for the token; the last must hash to
    /// the leaf's outputHash.
    function respond(uint256 disputeId, bytes[] calldata activations) external;

    /// @notice The challenger names one row of one layer; the contract checks the row against the weights root and
    /// recomputes it. A mismatch slashes the node; a match forfeits the bond to the node.
    /// @param layerInput the layer's input: the token input for layer 0, else the node's activations[layer-1]
    /// @param layerOutput the node's activations[layer]
    function prove(
        uint256 disputeId,
        uint32 layer,
        uint32 row,
        bytes calldata layerInput,
        bytes calldata layerOutput,
        bytes calldata rowWeights,
        int32 bias,
        bytes32[] calldata rowProof
    ) external;

    /// @notice After a phase's deadline: a silent node is slashed, a silent challenger loses the bond. Anyone may call.
    function timeout(uint256 disputeId) external;

    function responseWindow() external view returns (uint64);
    function proofWindow() external view returns (uint64);
    function disputeCount() external view returns (uint256);
    function dispute(uint256 disputeId) external view returns (Dispute memory);
    function activationHashes(uint256 disputeId) external view returns (bytes32[] memory);
}
