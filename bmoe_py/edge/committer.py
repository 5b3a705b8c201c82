"""The commitment duty (docs/protocol.md 9): group answered requests by (task, expert, version) into windows, close
a window `window_seconds` after its first request or at `window_tokens` tokens, pin its bundle, commit its root.

Every step is recorded before the next, so a restart picks up where the process stopped: requests not in a window
are windowed again, a closed window is pinned and committed (pinning is idempotent: the bundle has the same bytes
and CID). A commit whose transaction was mined but not recorded (killed in between) is found again in the ledger's
`CommitmentPosted` events since the window was closed, so a window is never committed (and paid) twice.
"""
from __future__ import annotations

import logging
import time
from itertools import groupby
from typing import TYPE_CHECKING

from ..chain.client import TransactionReverted
from ..protocol.bundle import WindowBundle
from ._tx import tx_hash
from .store import EdgeStore, Window

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["Committer"]

log = logging.getLogger("bmoe.edge")
# Reverts after which retrying the same commit cannot succeed.
_FINAL_ERRORS = {"TaskAlreadyClosed", "UnknownTask", "UnknownVersion"}
_REFUSED_RETRY_SECONDS = 10


class Committer:
    def __init__(self, chain: Chain, ipfs: IpfsClient, store: EdgeStore, model_id: int,
                 window_seconds: float, window_tokens: int) -> None:  # fmt: skip
        self.chain, self.ipfs, self.store, self.model_id = chain, ipfs, store, model_id
        self.window_seconds, self.window_tokens = window_seconds, window_tokens
        self._retry_at: dict[int, float] = {}  # window id -> when to try a refused commit again
        self._last_refusal: dict[int, str] = {}

    def tick(self, now: float | None = None) -> None:
        """One pass: close the windows that are due, then pin and commit every closed window."""
        now = time.time() if now is None else now
        self.close_due(now)
        for window in self.store.windows("closed"):
            if self._retry_at.get(window.id, 0.0) > now:
                continue
            try:
                self.commit(window)
            except TransactionReverted as exc:
                if exc.name in _FINAL_ERRORS:
                    self.store.set_window_status(window.id, "failed", note=str(exc))
                    log.error("window %d (task %d expert %d, %d tokens) cannot be committed: %s", window.id,
                              window.task_id, window.expert_index, window.token_count, exc)  # fmt: skip
                    continue
                # Escrow may be topped up, stake restored: try again later, and say so once per new reason.
                self._retry_at[window.id] = now + _REFUSED_RETRY_SECONDS
                if self._last_refusal.get(window.id) != str(exc):
                    self._last_refusal[window.id] = str(exc)
                    log.warning("window %d: commit refused, retrying every %ds: %s", window.id,
                                _REFUSED_RETRY_SECONDS, exc)  # fmt: skip

    def close_due(self, now: float) -> None:
        pending = self.store.unwindowed()
        key = lambda r: (r[1], r[2], r[3])  # noqa: E731 - (task, expert, version)
        for (task, expert, version), group in groupby(sorted(pending, key=key), key=key):
            rows = list(group)
            while rows:
                total = sum(r[4] for r in rows)
                if total < self.window_tokens and rows[0][5] + self.window_seconds > now:
                    break
                taken, tokens = [], 0
                while rows and (not taken or tokens + rows[0][4] <= self.window_tokens):
                    tokens += rows[0][4]
                    taken.append(rows.pop(0)[0])
                window = self.store.close_window(task, expert, version, taken, self.chain.w3.eth.block_number)
                log.info("closed window %d: task %d expert %d v%d, %d requests, %d tokens", window, task, expert,
                         version, len(taken), tokens)  # fmt: skip

    def bundle(self, window: Window) -> WindowBundle:
        requests = self.store.window_requests(window.id)
        return WindowBundle.of_requests(
            self.chain.address, window.task_id, self.model_id, window.expert_index, window.expert_version,
            [(r.request_id, r.inputs, r.outputs) for r in requests],
        )  # fmt: skip

    def commit(self, window: Window) -> None:
        bundle = self.bundle(window)
        cid = self.ipfs.add_bytes(bundle.encode(), name=f"window-{window.id}.safetensors")
        self.store.set_bundle(window.id, cid, bundle.root)
        posted = self._already_posted(window, bundle.root)
        if posted is not None:
            self.store.set_committed(window.id, *posted)
            log.info("window %d was already committed before a restart (tx %s)", window.id, posted[1])
            return
        fn = self.chain.ledger.functions.commit(
            window.task_id, window.expert_index, window.expert_version, bundle.root, len(bundle), cid
        )
        receipt = self.chain.send(fn)
        (event,) = self.chain.events(receipt, "ResultLedger", "CommitmentPosted")
        tx = tx_hash(receipt)
        self.store.set_committed(window.id, int(event["commitment"]["postedAt"]), tx)
        log.info("committed window %d: task %d expert %d v%d, %d tokens, root 0x%s, bundle %s, tx %s, gas %d "
                 "(%.1f per token)", window.id, window.task_id, window.expert_index, window.expert_version, len(bundle),
                 bundle.root.hex(), cid, tx, receipt["gasUsed"], receipt["gasUsed"] / len(bundle))  # fmt: skip

    def _already_posted(self, window: Window, root: bytes) -> tuple[int, str] | None:
        """(postedAt, tx) of a CommitmentPosted of this node for this window's root since the window was closed."""
        event = self.chain.ledger.events.CommitmentPosted()
        logs = event.get_logs(from_block=window.from_block, argument_filters={"node": self.chain.address, "taskId": window.task_id})
        for entry in logs:
            c = entry["args"]["commitment"]
            if bytes(c["root"]) == root and not c["fromReceipt"] and c["expertIndex"] == window.expert_index:
                return int(c["postedAt"]), tx_hash(entry)
        return None
