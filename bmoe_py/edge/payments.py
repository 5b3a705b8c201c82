"""Getting paid: finalize each committed window once its challenge window has passed (docs/protocol.md 4), then
claim what the ledger (payments) and the dispute modules (bonds of challengers who lost) credit to the node."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..chain.client import TransactionReverted
from ._tx import tx_hash
from .store import EdgeStore

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = ["Payments", "chain_time"]

log = logging.getLogger("bmoe.edge")
_STATUS = {2: "finalized", 3: "invalidated"}  # IResultLedger.Status
_CLAIM_EVERY = 4  # ticks between claimable checks when nothing was finalized (bonds won in disputes)


def chain_time(chain: Chain) -> int:
    """A lower bound of the next block's timestamp: anvil's clock can run ahead of ours (evm_increaseTime)."""
    return max(int(chain.w3.eth.get_block("latest")["timestamp"]), int(time.time()))


class Payments:
    def __init__(self, chain: Chain, store: EdgeStore, challenge_window: int) -> None:
        self.chain, self.store, self.challenge_window = chain, store, challenge_window
        self._ticks = 0

    def tick(self) -> None:
        finalized = self.finalize_due()
        self._ticks += 1
        if finalized or self._ticks % _CLAIM_EVERY == 1:
            self.claim()

    def finalize_due(self) -> int:
        windows = self.store.windows("committed")
        if not windows:
            return 0
        now, done, node = chain_time(self.chain), 0, self.chain.address
        for window in windows:
            if now < window.posted_at + self.challenge_window:
                continue
            commitment = window.commitment(node)
            try:
                receipt = self.chain.send(self.chain.ledger.functions.finalize(commitment.as_tuple()))
            except TransactionReverted as exc:
                if exc.name == "WrongStatus":  # finalized by someone else, or invalidated by a proven fraud
                    status, _ = self.chain.call(self.chain.ledger.functions.commitmentState(commitment.id()))
                    self.store.set_window_status(window.id, _STATUS.get(int(status), "failed"), note=str(exc))
                    log.warning("window %d is %s on chain", window.id, _STATUS.get(int(status), f"in status {status}"))
                elif exc.name in ("ChallengeWindowOpen", "DisputesOpen"):
                    log.debug("window %d not final yet: %s", window.id, exc)
                else:
                    log.warning("window %d: finalize refused, will retry: %s", window.id, exc)
                continue
            (event,) = self.chain.events(receipt, "ResultLedger", "CommitmentFinalized")
            self.store.set_window_status(window.id, "finalized", payment=int(event["payment"]))
            done += 1
            log.info("finalized window %d (task %d expert %d, %d tokens): payment %d wei, tx %s", window.id,
                     window.task_id, window.expert_index, window.token_count, event["payment"],
                     tx_hash(receipt))  # fmt: skip
        return done

    def claim(self) -> None:
        node = self.chain.address
        for name, contract in (("ledger", self.chain.ledger), ("fraud proof", self.chain.fraud_proof),
                               ("committee", self.chain.committee)):  # fmt: skip
            amount = int(self.chain.call(contract.functions.claimable(node)))
            if amount:
                receipt = self.chain.send(contract.functions.claim())
                log.info("claimed %d wei from the %s, tx %s", amount, name, tx_hash(receipt))
