"""The validator loop: watch -> check -> challenge -> carry disputes to their end, with every step recorded.

One pass (`run_once`) does, in order: reconcile challenges that a crash left unrecorded, store new commitments,
check the unchecked ones (sample and re-execute), challenge one wrong token of each wrong commitment (one proven
token takes the node's whole stake, so more disputes would only cost gas), take part in the committees (draw,
vote, finalize when due), and advance every open dispute of its own. Each step reads its work from the store, so a
pass interrupted anywhere is completed by the next one, in this process or after a restart.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..chain.client import TransactionReverted
from ..crypto.commitments import Commitment
from ..protocol.bundle import WindowBundle
from .checker import BadBundle, Checker
from .committee import CommitteeMember
from .fraud import FraudProofDriver
from .store import ValidatorStore
from .watcher import CommitmentWatcher

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["Validator", "ValidatorConfig", "ValidatorStats"]

log = logging.getLogger("bmoe.validator")


@dataclass(frozen=True)
class ValidatorConfig:
    model_id: int
    sample_rate: float = 0.1
    poll: float = 1.0
    from_block: int = 0
    committee: bool = True  # vote in committees for float experts (needs validator stake)


@dataclass
class ValidatorStats:
    commitments: int = 0
    checked: int = 0
    wrong: int = 0
    disputes: int = 0
    won: int = 0
    lost: int = 0
    votes: int = 0
    training_windows: int = 0  # checked training windows (protocol 11)
    priority: int = 0  # of which every step was checked: the node was flagged by screening
    errors: list[str] = field(default_factory=list)


class Validator:
    def __init__(self, chain: Chain, ipfs: IpfsClient, store: ValidatorStore, config: ValidatorConfig) -> None:
        if not 0 < config.sample_rate <= 1:
            raise ValueError(f"sample rate {config.sample_rate} must be in (0, 1]")
        self.chain = chain
        self.store = store
        self.config = config
        self.watcher = CommitmentWatcher(chain, config.model_id, store, from_block=config.from_block)
        self.checker = Checker(chain, ipfs, config.model_id)
        self.fraud = FraudProofDriver(chain, ipfs)
        # Challenging a float token needs only the committee client; voting (`step`) needs validator stake and is
        # what `config.committee` turns on.
        self.committee = CommitteeMember(chain, self.checker, store, ipfs)
        self.stats = ValidatorStats()
        self._window = int(chain.call(chain.registry.functions.model(config.model_id))[4])

    def run(self, stop: threading.Event) -> None:
        """Passes until `stop` is set; an error in one pass is logged and the next pass retries."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a flaky RPC or IPFS answer must not end the validator
                log.warning("validator pass failed: %s: %s", type(exc).__name__, exc)
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            stop.wait(self.config.poll)

    def run_once(self) -> None:
        self._reconcile()
        for posted in self.watcher.poll():
            self.stats.commitments += 1
            log.info("commitment 0x%s of node %s: %d tokens, bundle %s", posted.commitment.id().hex()[:12],
                     posted.commitment.node, posted.commitment.token_count, posted.bundle_cid)  # fmt: skip
        for stored in self.store.commitments("seen"):
            self._check(stored.commitment, stored.bundle_cid)
        for stored in self.store.commitments("wrong"):
            self._challenge(stored.commitment, stored.bundle_cid)
        if self.config.committee:  # first: it may finalize a dispute that _advance then records and claims
            self.stats.votes += self.committee.step()
        self._advance()

    # ------------------------------------------------------------------------------------------------ steps

    def _check(self, commitment: Commitment, cid: str) -> None:
        cid_key = commitment.id()
        if self._now() >= commitment.posted_at + self._window:
            self.store.set_status(cid_key, "expired")
            return
        try:
            result = self.checker.check(commitment, cid, self.config.sample_rate)
        except BadBundle as exc:
            log.warning("commitment 0x%s: bad bundle: %s", cid_key.hex()[:12], exc)
            self.store.set_status(cid_key, "bad_bundle", str(exc))
            return
        self.store.add_samples(cid_key, result.sampled)
        self.stats.checked += 1
        if not isinstance(result.bundle, WindowBundle):
            self.stats.training_windows += 1
            self.stats.priority += int(result.priority)
        if result.wrong:
            self.stats.wrong += 1
            log.warning("commitment 0x%s of node %s: wrong outputs at %s", cid_key.hex()[:12], commitment.node, result.wrong)
        self.store.set_status(cid_key, "wrong" if result.wrong else "ok")

    def _challenge(self, commitment: Commitment, cid: str) -> None:
        cid_key = commitment.id()
        module = "fraud" if self.checker.exact else "committee"
        if any(row.commitment_id == cid_key for row in self.store.disputes()):
            self.store.set_status(cid_key, "disputed")
            return
        bundle = self.checker.fetch(commitment, cid)
        wrong = [p for p, ok in sorted(self.store.samples(cid_key).items()) if not ok]
        reasons = []
        for position in wrong:
            if not self.store.intend_dispute(module, cid_key, position):
                continue
            try:
                token = self.checker.token(bundle, position)
                if module == "fraud":
                    dispute_id = self.fraud.challenge(commitment, token)
                else:
                    dispute_id = self.committee.challenge(commitment, token)
            except TransactionReverted as exc:
                # reverted before it was sent: nothing happened on chain, the intent can go
                self.store.drop_intent(module, cid_key, position)
                reasons.append(f"{position}: {exc.name}")
                continue
            self.store.set_dispute_id(module, cid_key, position, dispute_id)
            self.store.set_status(cid_key, "disputed")
            self.stats.disputes += 1
            log.warning("challenged token %d of commitment 0x%s: %s dispute %d", position, cid_key.hex()[:12], module, dispute_id)
            return
        self.store.set_status(cid_key, "unchallenged", "; ".join(reasons))

    def _advance(self) -> None:
        for row in self.store.disputes(open_only=True):
            if row.dispute_id is None:
                continue
            if row.module == "fraud":
                status = self.fraud.step(row.dispute_id)
                phase, outcome, done = status.phase, status.outcome, status.done
            else:
                phase, outcome, done = self.committee.advance(row.dispute_id)
            self.store.update_dispute(row.module, row.dispute_id, phase, outcome, done)
            if done:
                if outcome == "fraud":
                    self.stats.won += 1
                elif outcome == "honest":
                    self.stats.lost += 1
                log.warning("%s dispute %d ended: %s", row.module, row.dispute_id, outcome)

    def _reconcile(self) -> None:
        """Challenges recorded as intended but without an id: sent before a crash, or never sent."""
        for row in self.store.disputes(open_only=True):
            if row.dispute_id is not None:
                continue
            contract = self.chain.fraud_proof if row.module == "fraud" else self.chain.committee
            logs = contract.events.Challenged().get_logs(
                from_block=self.config.from_block, argument_filters={"commitmentId": row.commitment_id}
            )
            mine = [l for l in logs if l["args"]["challenger"].lower() == self.chain.address.lower()]
            if mine:
                self.store.set_dispute_id(row.module, row.commitment_id, row.position, int(mine[-1]["args"]["disputeId"]))
            else:
                self.store.drop_intent(row.module, row.commitment_id, row.position)

    def _now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])
