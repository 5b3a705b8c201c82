"""New commitments of one model, from `CommitmentPosted` logs polled with eth_getLogs from a saved block cursor.

Polling rather than a filter subscription: filters die with the node's memory (an anvil restart, a load balancer
switching nodes) and a restarted validator must resume exactly where it stopped, which a block cursor in the store
gives for free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..crypto.commitments import Commitment

if TYPE_CHECKING:
    from ..chain.client import Chain
    from .store import ValidatorStore

__all__ = ["CommitmentWatcher", "PostedCommitment"]


@dataclass(frozen=True)
class PostedCommitment:
    commitment: Commitment
    bundle_cid: str
    block: int


class CommitmentWatcher:
    def __init__(self, chain: Chain, model_id: int, store: ValidatorStore, *, from_block: int = 0, max_range: int = 5000):
        self.chain = chain
        self.model_id = model_id
        self.store = store
        self.from_block = from_block
        self.max_range = max_range  # public nodes cap the block range of one eth_getLogs
        self._task_models: dict[int, int] = {}

    def poll(self) -> list[PostedCommitment]:
        """Scans the blocks since the cursor; stores and returns the commitments of the model not seen before."""
        start = self.store.cursor(self.from_block)
        latest = int(self.chain.w3.eth.block_number)
        found: list[PostedCommitment] = []
        while start <= latest:
            end = min(latest, start + self.max_range - 1)
            logs = self.chain.ledger.events.CommitmentPosted().get_logs(from_block=start, to_block=end)
            for log in logs:
                commitment = Commitment.from_event(log["args"]["commitment"])
                if self._model_of(commitment.task_id) != self.model_id:
                    continue
                posted = PostedCommitment(commitment, str(log["args"]["bundleCid"]), int(log["blockNumber"]))
                if self.store.add_commitment(commitment, posted.bundle_cid, posted.block):
                    found.append(posted)
            self.store.set_cursor(end + 1)
            start = end + 1
        return found

    def _model_of(self, task_id: int) -> int:
        if task_id not in self._task_models:  # a task's model never changes
            task = self.chain.call(self.chain.ledger.functions.task(task_id))
            self._task_models[task_id] = int(task[2])
        return self._task_models[task_id]
