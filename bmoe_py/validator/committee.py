"""Committee disputes for float experts (docs/protocol.md 6), from a validator's side.

Every pass (`step`) walks the model's open committee disputes and does what is due, whoever opened them:
draw the committee once the seed block exists, vote when drawn (re-execute the challenged token from its bundle
and compare within the model's tolerance), commit then reveal in their windows, finalize after the reveal deadline,
and claim what the module owes this key. Votes are decided once and kept with their salt in the store before the
commit is sent, so a restarted validator reveals exactly what it committed.
"""
from __future__ import annotations

import logging
import secrets
from enum import IntEnum
from typing import TYPE_CHECKING

from ..chain.client import TransactionReverted
from ..crypto.commitments import Commitment

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..protocol.bundle import BundleToken
    from ..storage.client import IpfsClient
    from .checker import Checker
    from .store import ValidatorStore
    from .training import StepToken

__all__ = ["CommitteeMember", "CommitteePhase", "Outcome"]

log = logging.getLogger("bmoe.validator.committee")

# "not yet", "too late" or "someone else did it": the chain's state moves on and the next pass sees it.
_RACES = {"WrongPhase", "DeadlinePassed", "DeadlineNotReached", "SeedNotReady", "AlreadyCommitted", "AlreadyRevealed",
          "NothingToClaim", "NoEligibleValidators"}  # fmt: skip


class CommitteePhase(IntEnum):
    NONE = 0
    AWAITING_DRAW = 1
    VOTING = 2
    REVEALING = 3
    RESOLVED = 4


class Outcome(IntEnum):
    PENDING = 0
    FRAUD = 1
    HONEST = 2
    UNDECIDED = 3


_FIELDS = ("commitmentId", "challenger", "node", "modelId", "bond", "anchorBlock", "drawDeadline", "commitDeadline",
           "revealDeadline", "phase", "outcome", "fraudStake", "honestStake")  # fmt: skip


class CommitteeMember:
    def __init__(self, chain: Chain, checker: Checker, store: ValidatorStore, ipfs: IpfsClient) -> None:
        self.chain = chain
        self.checker = checker
        self.store = store
        self.ipfs = ipfs
        self.model_id = checker.model_id
        self._resolved: set[int] = set()

    @property
    def contract(self):
        return self.chain.committee

    def join(self, stake: int = 0) -> None:
        """Deposits `stake` (if any) and joins the validator set, unless already in it."""
        if stake:
            self.chain.send(self.chain.staking.functions.deposit(), value=stake)
        if not self.chain.call(self.chain.staking.functions.isValidator(self.chain.address)):
            self.chain.send(self.chain.staking.functions.joinValidators())

    def challenge(self, commitment: Commitment, token: BundleToken | StepToken) -> int:
        bond = self.chain.call(self.contract.functions.bond())
        receipt = self.chain.send(
            self.contract.functions.challenge(commitment.as_tuple(), token.leaf.as_tuple(), [bytes(p) for p in token.proof]),
            value=bond,
        )
        return int(self.chain.events(receipt, "CommitteeDispute", "Challenged")[0]["disputeId"])

    def dispute(self, dispute_id: int) -> dict:
        return dict(zip(_FIELDS, self.chain.call(self.contract.functions.dispute(dispute_id))))

    def advance(self, dispute_id: int) -> tuple[str, str | None, bool]:
        """(phase, outcome, done) of a dispute this validator opened; `step` does the moving."""
        d = self.dispute(dispute_id)
        phase, outcome = CommitteePhase(d["phase"]), Outcome(d["outcome"])
        if phase is CommitteePhase.RESOLVED:
            self._claim()
            return phase.name.lower(), outcome.name.lower(), self._claimable() == 0
        return phase.name.lower(), None, False

    def step(self) -> int:
        """One pass over the model's unresolved committee disputes; returns the number of votes sent."""
        votes = 0
        count = int(self.chain.call(self.contract.functions.disputeCount()))
        for dispute_id in range(1, count + 1):
            if dispute_id in self._resolved:
                continue
            d = self.dispute(dispute_id)
            if int(d["modelId"]) != self.model_id:
                self._resolved.add(dispute_id)  # not ours to watch
                continue
            phase = CommitteePhase(d["phase"])
            if phase is CommitteePhase.RESOLVED:
                self._resolved.add(dispute_id)
                continue
            now = self._now()
            if phase is CommitteePhase.AWAITING_DRAW:
                fn = "finalize" if now >= d["drawDeadline"] else "drawCommittee"
                self._try(getattr(self.contract.functions, fn)(dispute_id))
                continue
            votes += self._vote(dispute_id, d, now)
            if now >= d["revealDeadline"]:
                self._try(self.contract.functions.finalize(dispute_id))
        self._claim()
        return votes

    # ------------------------------------------------------------------------------------------------ voting

    def _vote(self, dispute_id: int, d: dict, now: int) -> int:
        members, _ = self.chain.call(self.contract.functions.committee(dispute_id))
        if self.chain.address.lower() not in {m.lower() for m in members}:
            return 0
        vote = self.store.vote(dispute_id)
        if vote is None:
            fraud = self._judge(dispute_id, d)
            vote = self.store.save_vote(dispute_id, fraud, secrets.token_bytes(32))
            log.info("committee dispute %d: voting %s", dispute_id, "fraud" if vote.fraud else "honest")
        sent = 0
        if not vote.committed and now < d["commitDeadline"]:
            digest = self.chain.call(
                self.contract.functions.voteCommitment(dispute_id, vote.salt, self.chain.address, vote.fraud)
            )
            refused = self._try(self.contract.functions.commitVote(dispute_id, digest))
            sent = int(refused is None)
            if refused in (None, "AlreadyCommitted"):  # AlreadyCommitted: sent before a crash
                self.store.mark_vote(dispute_id, committed=True)
        elif vote.committed and not vote.revealed and d["commitDeadline"] <= now < d["revealDeadline"]:
            if self._try(self.contract.functions.revealVote(dispute_id, vote.fraud, vote.salt)) in (None, "AlreadyRevealed"):
                self.store.mark_vote(dispute_id, revealed=True)
        return sent

    def _judge(self, dispute_id: int, d: dict) -> bool:
        """True (fraud) if the challenged token's committed output is not what the registered expert computes (for
        a step of a training window: if `records.judge_step` finds it wrong)."""
        challenged = self.contract.events.Challenged().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
        leaf = bytes(challenged[-1]["args"]["leaf"])
        posted = self.chain.ledger.events.CommitmentPosted().get_logs(
            from_block=0, argument_filters={"commitmentId": bytes(d["commitmentId"])}
        )
        if not posted:
            raise LookupError(f"committee dispute {dispute_id}: commitment 0x{bytes(d['commitmentId']).hex()} not found")
        commitment = Commitment.from_event(posted[-1]["args"]["commitment"])
        bundle = self.checker.fetch(commitment, str(posted[-1]["args"]["bundleCid"]))
        for position in range(len(bundle)):
            if bundle.leaf(position).hash() == leaf:
                return not self.checker.correct(bundle, position)
        raise LookupError(f"committee dispute {dispute_id}: leaf 0x{leaf.hex()} is not in the bundle")

    # ------------------------------------------------------------------------------------------------ plumbing

    def _claimable(self) -> int:
        return int(self.chain.call(self.contract.functions.claimable(self.chain.address)))

    def _claim(self) -> None:
        if self._claimable() > 0:
            self._try(self.contract.functions.claim())

    def _now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _try(self, fn) -> str | None:
        """Sends `fn`; None if it went through, the error's name if the chain refused it for a benign reason."""
        try:
            self.chain.send(fn)
            return None
        except TransactionReverted as exc:
            if exc.name not in _RACES:
                raise
            return exc.name
