// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IDisputeModule} from "./IDisputeModule.sol";
import {IResultLedger} from "./IResultLedger.sol";

/// @title Committee vote for float experts (docs/protocol.md, "Committee dispute")
/// @notice challenge -> committee drawn by stake from a blockhash after the challenge -> commit votes ->
/// reveal votes -> majority by stake decides whether the result lies within the model's tolerance.
/// @dev The errors, event and functions shared with FraudProof (bond, claims, leaf checks) are in IDisputeModule.
interface ICommitteeDispute is IDisputeModule {
    enum Phase {
        None,
        AwaitingDraw,
        Voting,
        Revealing,
        Resolved
    }

    enum Outcome {
        Pending,
        Fraud,
        Honest,
        Undecided
    }

    struct Dispute {
        bytes32 commitmentId;
        address challenger;
        address node;
        uint256 modelId;
        uint256 bond;
        uint64 anchorBlock;
        uint64 drawDeadline;
        uint64 commitDeadline;
        uint64 revealDeadline;
        Phase phase;
        Outcome outcome;
        uint256 fraudStake;
        uint256 honestStake;
    }

    error NotFloatModel(uint256 modelId);
    error UnknownDispute(uint256 disputeId);
    error WrongPhase(uint256 disputeId, Phase phase);
    error SeedNotReady(uint256 readyAtBlock);
    error NoEligibleValidators();
    error NotCommitteeMember(address caller);
    error AlreadyCommitted(address voter);
    error NotCommitted(address voter);
    error AlreadyRevealed(address voter);
    error RevealMismatch();
    error DeadlinePassed(uint256 deadline);
    error DeadlineNotReached(uint256 deadline);

    event Challenged(uint256 indexed disputeId, bytes32 indexed commitmentId, address indexed challenger, address node, bytes32 leaf);
    event CommitteeDrawn(uint256 indexed disputeId, bytes32 seed, address[] members, uint256[] weights);
    event SeedReanchored(uint256 indexed disputeId, uint64 anchorBlock);
    event VoteCommitted(uint256 indexed disputeId, address indexed voter);
    event VoteRevealed(uint256 indexed disputeId, address indexed voter, bool fraud, uint256 weight);
    event Resolved(uint256 indexed disputeId, Outcome outcome, uint256 fraudStake, uint256 honestStake, uint256 slashed);
    event NonRevealPenalized(uint256 indexed disputeId, address indexed voter, uint256 penalty);

    /// @notice Challenges one token of a commitment of a float model. msg.value must equal `bond()`.
    function challenge(
        IResultLedger.Commitment calldata commitment,
        IResultLedger.Leaf calldata leaf,
        bytes32[] calldata proof
    ) external payable returns (uint256 disputeId);

    /// @notice Draws the committee from the validator set, weighted by stake, with the hash of the block after the
    /// anchor block as seed (so no party knows it when challenging). Anyone may call.
    function drawCommittee(uint256 disputeId) external;

    /// @notice A committee member commits keccak256(abi.encode(disputeId, voter, fraud, salt)).
    function commitVote(uint256 disputeId, bytes32 commitment) external;

    /// @notice A committee member reveals its vote; `fraud` means the result is outside the tolerance.
    function revealVote(uint256 disputeId, bool fraud, bytes32 salt) external;

    /// @notice After the reveal deadline (or the draw deadline when no committee was drawn), tallies the votes by
    /// stake, slashes the losing side and penalises members who did not reveal. Anyone may call.
    function finalize(uint256 disputeId) external;

    function committeeSize() external view returns (uint256);
    function nonRevealPenalty() external view returns (uint256);
    function disputeCount() external view returns (uint256);
    function dispute(uint256 disputeId) external view returns (Dispute memory);
    function committee(uint256 disputeId) external view returns (address[] memory members, uint256[] memory weights);
    function voteCommitment(uint256 disputeId, bytes32 salt, address voter, bool fraud) external pure returns (bytes32);
}
