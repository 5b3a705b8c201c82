// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICommitteeDispute} from "../interfaces/ICommitteeDispute.sol";
import {IExpertRegistry} from "../interfaces/IExpertRegistry.sol";
import {IResultLedger} from "../interfaces/IResultLedger.sol";
import {IStaking} from "../interfaces/IStaking.sol";
import {DisputeModule} from "./DisputeModule.sol";

/// @title Committee vote for float experts (docs/protocol.md, section 6)
/// @notice A float result cannot be recomputed bit for bit on chain, so a committee of staked validators, drawn
/// by stake from a blockhash nobody knew at challenge time, votes (commit, then reveal) on whether the result
/// lies within the model's tolerance. The majority by stake decides; the losing side pays.
/// @dev Phases advance with the transaction that enters them: `challenge` -> AwaitingDraw, `drawCommittee` ->
/// Voting, the first `revealVote` -> Revealing, `finalize` -> Resolved. Deadlines, not phases, bound each action:
/// votes are committed until `commitDeadline` and revealed after it, until `revealDeadline`.
///
/// Money: this contract holds the bonds of open disputes and the balances credited to accounts (`claimable`).
/// Slashed ETH arrives from Staking during `finalize`; what is not credited is burned in the same transaction.
/// Every share is computed by integer division and the remainder of every division is burned.
contract CommitteeDispute is ICommitteeDispute, DisputeModule {
    /// @notice The most validators one draw examines. Each costs two external view calls (validatorAt, stakeOf) and
    /// a sampling step, about 7.3k gas in all (measured), so a draw stays under ~2.3M gas whatever the size of the
    /// validator set (340k for a committee of 3 out of 6 validators). A larger set is scanned through a window of
    /// MAX_SCAN consecutive validators (wrapping around) that starts at a position taken from the seed, so every
    /// validator is equally likely to be examined.
    uint256 public constant MAX_SCAN = 256;

    /// @inheritdoc ICommitteeDispute
    uint256 public immutable committeeSize;
    /// @inheritdoc ICommitteeDispute
    uint256 public immutable nonRevealPenalty;
    /// @notice Seconds after the challenge during which the committee can be drawn.
    uint64 public immutable drawWindow;
    /// @notice Seconds after the draw during which members commit their votes.
    uint64 public immutable commitWindow;
    /// @notice Seconds after the commit deadline during which members reveal their votes.
    uint64 public immutable revealWindow;

    /// @dev A committee member's vote. `weight` is the member's active stake snapshotted at the draw; it is never
    /// zero for a member (minValidatorStake is positive), so it doubles as the membership flag.
    struct Ballot {
        uint256 weight;
        bytes32 commitment;
        bool revealed;
        bool fraud;
    }

    uint256 private _disputeCount;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(uint256 disputeId => address[]) private _members;
    mapping(uint256 disputeId => mapping(address member => Ballot)) private _ballots;

    /// @dev Deployed after the ledger; `Staking.setSlashers` and `ResultLedger.setDisputeModules` must then name this
    /// contract (docs/protocol.md 1). Keep `committeeSize_` small (a handful): every member costs a lock and two
    /// storage slots at the draw and an unlock (and perhaps a slash) at `finalize`.
    /// @param bond_ the challenger's bond, in wei
    /// @param committeeSize_ the most members a committee has
    /// @param drawWindow_ seconds after a challenge during which the committee can be drawn
    /// @param commitWindow_ seconds after the draw during which members commit their votes
    /// @param revealWindow_ seconds after the commit deadline during which members reveal
    /// @param nonRevealPenalty_ wei slashed (and burned) from each member that does not reveal
    constructor(
        IResultLedger ledger_,
        IExpertRegistry registry_,
        IStaking staking_,
        uint256 bond_,
        uint256 committeeSize_,
        uint64 drawWindow_,
        uint64 commitWindow_,
        uint64 revealWindow_,
        uint256 nonRevealPenalty_
    ) DisputeModule(ledger_, registry_, staking_, bond_) {
        committeeSize = committeeSize_;
        drawWindow = drawWindow_;
        commitWindow = commitWindow_;
        revealWindow = revealWindow_;
        nonRevealPenalty = nonRevealPenalty_;
    }

    // ------------------------------------------------------------------------------------------------ disputes

    /// @inheritdoc ICommitteeDispute
    function challenge(
        IResultLedger.Commitment calldata commitment,
        IResultLedger.Leaf calldata leaf,
        bytes32[] calldata proof
    ) external payable returns (uint256 disputeId) {
        _checkBond();
        uint256 modelId = ledger.task(commitment.taskId).modelId;
        if (registry.model(modelId).mode != IExpertRegistry.Mode.Float) revert NotFloatModel(modelId);
        (bytes32 commitmentId, bytes32 leafHash) = _checkLeaf(commitment, leaf, proof, modelId);

        disputeId = ++_disputeCount;
        _setLeafDispute(commitmentId, leafHash, disputeId);
        Dispute storage d = _disputes[disputeId];
        d.commitmentId = commitmentId;
        d.challenger = msg.sender;
        d.node = commitment.node;
        d.modelId = modelId;
        d.bond = msg.value;
        d.anchorBlock = uint64(block.number);
        d.drawDeadline = uint64(block.timestamp) + drawWindow;
        d.phase = Phase.AwaitingDraw;
        emit Challenged(disputeId, commitmentId, msg.sender, commitment.node, leafHash);

        // The ledger checks that the commitment is Posted and inside its challenge window, and blocks its
        // finalisation until `finalize` closes the dispute.
        ledger.openDispute(commitment);
        staking.lock(commitment.node);
    }

    /// @inheritdoc ICommitteeDispute
    /// @dev The seed is the hash of the block after the anchor (the challenge's block), so neither the challenger
    /// nor the node knew it when the challenge was sent. The EVM only serves the last 256 block hashes: when the
    /// seed block is older, the anchor moves to the current block and the call returns without drawing (it does
    /// not revert, so that the new anchor persists); the draw is then retried two blocks later.
    function drawCommittee(uint256 disputeId) external {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.AwaitingDraw) revert WrongPhase(disputeId, d.phase);
        if (block.timestamp > d.drawDeadline) revert DeadlinePassed(d.drawDeadline);
        uint256 seedBlock = uint256(d.anchorBlock) + 1;
        if (block.number <= seedBlock) revert SeedNotReady(seedBlock + 1);
        bytes32 seedHash = blockhash(seedBlock);
        if (seedHash == bytes32(0)) {
            d.anchorBlock = uint64(block.number);
            emit SeedReanchored(disputeId, d.anchorBlock);
            return;
        }
        bytes32 seed = keccak256(abi.encode(seedHash, disputeId));

        (address[] memory members, uint256[] memory weights) =
            _sample(seed, d.node, d.challenger, registry.model(d.modelId).minValidatorStake);

        d.phase = Phase.Voting;
        d.commitDeadline = uint64(block.timestamp) + commitWindow;
        d.revealDeadline = d.commitDeadline + revealWindow;
        _members[disputeId] = members;
        mapping(address => Ballot) storage ballots = _ballots[disputeId];
        for (uint256 i; i < members.length; ++i) {
            ballots[members[i]].weight = weights[i];
        }
        emit CommitteeDrawn(disputeId, seed, members, weights);

        for (uint256 i; i < members.length; ++i) {
            staking.lock(members[i]);
        }
    }

    /// @inheritdoc ICommitteeDispute
    /// @dev A zero commitment counts as none (it can be replaced, and never revealed).
    function commitVote(uint256 disputeId, bytes32 commitment) external {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.Voting) revert WrongPhase(disputeId, d.phase);
        if (block.timestamp > d.commitDeadline) revert DeadlinePassed(d.commitDeadline);
        Ballot storage b = _ballots[disputeId][msg.sender];
        if (b.weight == 0) revert NotCommitteeMember(msg.sender);
        if (b.commitment != bytes32(0)) revert AlreadyCommitted(msg.sender);
        b.commitment = commitment;
        emit VoteCommitted(disputeId, msg.sender);
    }

    /// @inheritdoc ICommitteeDispute
    /// @dev Reveals open only after the commit deadline, so no member can copy a vote revealed early.
    function revealVote(uint256 disputeId, bool fraud, bytes32 salt) external {
        Dispute storage d = _existing(disputeId);
        if (d.phase != Phase.Voting && d.phase != Phase.Revealing) revert WrongPhase(disputeId, d.phase);
        if (block.timestamp <= d.commitDeadline) revert DeadlineNotReached(d.commitDeadline);
        if (block.timestamp > d.revealDeadline) revert DeadlinePassed(d.revealDeadline);
        Ballot storage b = _ballots[disputeId][msg.sender];
        if (b.weight == 0) revert NotCommitteeMember(msg.sender);
        if (b.commitment == bytes32(0)) revert NotCommitted(msg.sender);
        if (b.revealed) revert AlreadyRevealed(msg.sender);
        if (b.commitment != voteCommitment(disputeId, salt, msg.sender, fraud)) revert RevealMismatch();

        b.revealed = true;
        b.fraud = fraud;
        if (fraud) d.fraudStake += b.weight;
        else d.honestStake += b.weight;
        d.phase = Phase.Revealing;
        emit VoteRevealed(disputeId, msg.sender, fraud, b.weight);
    }

    /// @inheritdoc ICommitteeDispute
    /// @dev Fraud (fraud stake > honest stake): the node's whole slashable stake is taken; the challenger is credited
    /// its bond + slashed / 2; each fraud voter is credited (slashed / 4) * weight / fraudStake; the rest is burned.
    /// Honest (honest stake > fraud stake): the node is credited bond / 2; each honest voter is credited
    /// (bond - bond / 2) * weight / honestStake; the rest is burned. Undecided (tie, no reveal, or no committee by
    /// the draw deadline): the bond goes back to the challenger. In every case each member that did not reveal is
    /// slashed nonRevealPenalty (burned), and the node and every member are unlocked.
    function finalize(uint256 disputeId) external nonReentrant {
        Dispute storage d = _existing(disputeId);
        Phase phase = d.phase;
        if (phase == Phase.AwaitingDraw) {
            if (block.timestamp <= d.drawDeadline) revert DeadlineNotReached(d.drawDeadline);
        } else if (phase == Phase.Voting || phase == Phase.Revealing) {
            if (block.timestamp <= d.revealDeadline) revert DeadlineNotReached(d.revealDeadline);
        } else {
            revert WrongPhase(disputeId, phase);
        }

        Outcome outcome;
        if (d.fraudStake > d.honestStake) outcome = Outcome.Fraud;
        else if (d.honestStake > d.fraudStake) outcome = Outcome.Honest;
        else outcome = Outcome.Undecided;
        d.phase = Phase.Resolved;
        d.outcome = outcome;

        uint256 slashed;
        uint256 burned;
        if (outcome == Outcome.Fraud) {
            // Staking sends the slashed ETH to this contract before `slash` returns.
            // Asking for everything takes all there is (active, then unbonding stake).
            slashed = staking.slash(d.node, type(uint256).max);
            uint256 voterPool = slashed / 4;
            uint256 paidToVoters = _payMajority(disputeId, true, voterPool, d.fraudStake);
            uint256 challengerShare = slashed / 2;
            _credit(d.challenger, d.bond + challengerShare);
            burned = slashed - challengerShare - paidToVoters;
        } else if (outcome == Outcome.Honest) {
            uint256 nodeShare = d.bond / 2;
            uint256 paidToVoters = _payMajority(disputeId, false, d.bond - nodeShare, d.honestStake);
            _credit(d.node, nodeShare);
            burned = d.bond - nodeShare - paidToVoters;
        } else {
            _credit(d.challenger, d.bond);
        }
        emit Resolved(disputeId, outcome, d.fraudStake, d.honestStake, slashed);

        burned += _penalizeSilentMembers(disputeId);
        ledger.closeDispute(d.commitmentId, outcome == Outcome.Fraud);
        staking.unlock(d.node);
        address[] storage members = _members[disputeId];
        for (uint256 i; i < members.length; ++i) {
            staking.unlock(members[i]);
        }
        _burn(burned);
    }

    // ------------------------------------------------------------------------------------------------ views

    /// @inheritdoc ICommitteeDispute
    function disputeCount() external view returns (uint256) {
        return _disputeCount;
    }

    /// @inheritdoc ICommitteeDispute
    function dispute(uint256 disputeId) external view returns (Dispute memory) {
        return _existing(disputeId);
    }

    /// @inheritdoc ICommitteeDispute
    function committee(uint256 disputeId) external view returns (address[] memory members, uint256[] memory weights) {
        members = _members[disputeId];
        weights = new uint256[](members.length);
        for (uint256 i; i < members.length; ++i) {
            weights[i] = _ballots[disputeId][members[i]].weight;
        }
    }

    /// @notice A member's vote: its weight (zero for a non-member), commitment, and revealed vote.
    function ballot(uint256 disputeId, address member) external view returns (Ballot memory) {
        return _ballots[disputeId][member];
    }

    /// @notice The latest dispute opened here on a token leaf of a commitment (0: none).
    function leafDispute(bytes32 commitmentId, bytes32 leaf) external view returns (uint256) {
        return _leafDisputeOf(commitmentId, leaf);
    }

    /// @inheritdoc ICommitteeDispute
    function voteCommitment(uint256 disputeId, bytes32 salt, address voter, bool fraud) public pure returns (bytes32) {
        return keccak256(abi.encode(disputeId, voter, fraud, salt));
    }

    // ------------------------------------------------------------------------------------------------ internals

    /// @dev A leaf stays closed to new challenges while its dispute runs and once a committee reached a verdict on it
    /// (Fraud invalidates the commitment anyway; Honest was decided by stake). An Undecided dispute (a tie, no
    /// reveal, no draw) settled nothing, so the leaf is open again, to anyone, with a new bond: otherwise a challenge
    /// that goes nowhere (perhaps by the node itself) would shield the leaf from everyone else.
    function _isUnderChallenge(uint256 disputeId) internal view override returns (bool) {
        return disputeId != 0 && _disputes[disputeId].outcome != Outcome.Undecided;
    }

    function _existing(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.phase == Phase.None) revert UnknownDispute(disputeId);
    }

    /// @dev Weighted sampling without replacement ("successive sampling"):
    /// 1. Candidates are the validators in the scan window (all of them when there are at most MAX_SCAN) other than
    ///    the node and the challenger whose active stake is at least `minStake`; a candidate's weight is that stake.
    /// 2. For draw k = 0, 1, ..., a number r = keccak256(seed, k) mod totalWeight picks the candidate whose
    ///    cumulative-weight interval contains r (so a candidate is picked with probability weight / totalWeight).
    ///    The picked candidate is removed (swapped with the last one) and its weight subtracted from the total,
    ///    and the next draw samples from the rest. The modulo bias is below totalWeight / 2^256: negligible.
    /// Cost: O(scan) external calls plus O(scan * committeeSize) memory steps (a few dozen gas each).
    /// Everything is a pure function of the seed and the staking state at the draw, so anyone can replay it.
    function _sample(bytes32 seed, address node, address challenger, uint256 minStake)
        private
        view
        returns (address[] memory members, uint256[] memory weights)
    {
        (address[] memory candidates, uint256[] memory stakes, uint256 n) =
            _candidates(seed, node, challenger, minStake);
        if (n == 0) revert NoEligibleValidators();
        uint256 total;
        for (uint256 i; i < n; ++i) {
            total += stakes[i];
        }

        uint256 size = n < committeeSize ? n : committeeSize;
        members = new address[](size);
        weights = new uint256[](size);
        for (uint256 k; k < size; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, k))) % total;
            uint256 j;
            // Walk the cumulative weights; stops inside the range because r < total = sum(stakes[0..n)).
            while (r >= stakes[j]) {
                r -= stakes[j];
                ++j;
            }
            members[k] = candidates[j];
            weights[k] = stakes[j];
            total -= stakes[j];
            --n;
            candidates[j] = candidates[n];
            stakes[j] = stakes[n];
        }
    }

    /// @dev The eligible validators of the scan window and their active stakes, in window order, in the first `n`
    /// entries of the returned arrays.
    function _candidates(bytes32 seed, address node, address challenger, uint256 minStake)
        private
        view
        returns (address[] memory candidates, uint256[] memory stakes, uint256 n)
    {
        uint256 count = staking.validatorCount();
        uint256 scan = count < MAX_SCAN ? count : MAX_SCAN;
        uint256 start = count == 0 ? 0 : uint256(seed) % count;
        candidates = new address[](scan);
        stakes = new uint256[](scan);
        for (uint256 i; i < scan; ++i) {
            address v = staking.validatorAt((start + i) % count);
            if (v == node || v == challenger) continue;
            uint256 s = staking.stakeOf(v);
            if (s < minStake) continue;
            candidates[n] = v;
            stakes[n] = s;
            ++n;
        }
    }

    /// @dev Credits each revealed member that voted `fraud` its share `pool * weight / majorityStake` and returns the
    /// sum credited (at most `pool`; the caller burns the difference).
    function _payMajority(uint256 disputeId, bool fraud, uint256 pool, uint256 majorityStake)
        private
        returns (uint256 paid)
    {
        address[] storage members = _members[disputeId];
        mapping(address => Ballot) storage ballots = _ballots[disputeId];
        for (uint256 i; i < members.length; ++i) {
            Ballot storage b = ballots[members[i]];
            if (b.revealed && b.fraud == fraud) {
                uint256 share = pool * b.weight / majorityStake;
                _credit(members[i], share);
                paid += share;
            }
        }
    }

    /// @dev Slashes every member that did not reveal by nonRevealPenalty (or what it has left) and returns the total
    /// taken, which the caller burns.
    function _penalizeSilentMembers(uint256 disputeId) private returns (uint256 taken) {
        address[] storage members = _members[disputeId];
        mapping(address => Ballot) storage ballots = _ballots[disputeId];
        uint256 penaltyAmount = nonRevealPenalty;
        if (penaltyAmount == 0) return 0;
        for (uint256 i; i < members.length; ++i) {
            if (ballots[members[i]].revealed) continue;
            uint256 penalty = staking.slash(members[i], penaltyAmount);
            taken += penalty;
            emit NonRevealPenalized(disputeId, members[i], penalty);
        }
    }
}
