"""Tasks on the ResultLedger (create, fund, close) and the report a publisher gets for one.

A task escrows `pricePerToken` wei for every token a node commits; nodes reserve from it when they commit their
windows and are paid after the challenge window. Closing a task stops new commitments and refunds what is not
reserved, so a publisher closes it only once its hosts have committed (or never, for a long-running task).
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = ["CallStats", "DisputeRecord", "TaskReport", "close_task", "create_task", "fund_task", "task_state"]


def create_task(chain: Chain, model_id: int, price_per_token: int, escrow: int) -> int:
    """Opens a task for `model_id` with `escrow` wei; returns its id (from the TaskCreated event)."""
    receipt = chain.send(chain.ledger.functions.createTask(model_id, price_per_token), value=escrow)
    return int(chain.events(receipt, "ResultLedger", "TaskCreated")[0]["taskId"])


def fund_task(chain: Chain, task_id: int, amount: int) -> None:
    chain.send(chain.ledger.functions.fund(task_id), value=amount)


def close_task(chain: Chain, task_id: int) -> int:
    """Closes the task; returns the refund credited to the publisher (claimable with `ResultLedger.claim`)."""
    receipt = chain.send(chain.ledger.functions.closeTask(task_id))
    return int(chain.events(receipt, "ResultLedger", "TaskClosed")[0]["refund"])


def task_state(chain: Chain, task_id: int) -> dict[str, Any]:
    publisher, closed, model_id, price, available, reserved = chain.call(chain.ledger.functions.task(task_id))
    return {
        "publisher": publisher, "closed": bool(closed), "model_id": int(model_id), "price_per_token": int(price),
        "available": int(available), "reserved": int(reserved),
    }  # fmt: skip


@dataclass(frozen=True)
class DisputeRecord:
    """A challenge this publisher raised against a host outvoted under `redundant:r`."""

    host: str
    expert: int
    dispute_id: int | None
    outcome: str | None  # "fraud" (host slashed), "honest" (bond lost), None (not settled), "error"
    slashed: int = 0  # wei taken from the host
    detail: str = ""


@dataclass
class TaskReport:
    """What one `InferenceSession.run` did. `to_dict()` is JSON-able (what `bmoe infer --json` prints)."""

    task_id: int
    model_id: int
    policy: str
    samples: int
    tokens: int  # model tokens routed (samples x tokens per sample x MoE layers x k)
    expert_tokens: int  # tokens sent to hosts, counting every replica
    accuracy: float | None
    predictions: list[int]
    seconds: float
    tokens_per_s: float
    calls_per_host: dict[str, int]
    failures_per_host: dict[str, int]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    disputes: dict[str, int]  # opened / won / lost / pending
    slashed: int  # wei slashed from hosts this task challenged
    evicted: dict[str, str]  # host -> why it was dropped from routing
    dispute_records: list[DisputeRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        accuracy = "-" if self.accuracy is None else f"{100 * self.accuracy:.2f}%"
        p50 = "-" if self.latency_p50_ms is None else f"{self.latency_p50_ms:.1f}"
        p99 = "-" if self.latency_p99_ms is None else f"{self.latency_p99_ms:.1f}"
        lines = [
            f"task {self.task_id} (model {self.model_id}, policy {self.policy}): {self.samples} samples, "
            f"{self.tokens} tokens in {self.seconds:.2f}s ({self.tokens_per_s:.0f} tokens/s), accuracy {accuracy}",
            f"calls: p50 {p50} ms, p99 {p99} ms; " + ", ".join(
                f"{host[:10]}: {n} calls, {self.failures_per_host.get(host, 0)} failed" for host, n in sorted(self.calls_per_host.items())
            ),
            f"disputes: {self.disputes['opened']} opened, {self.disputes['won']} won, {self.disputes['lost']} lost, "
            f"{self.disputes['pending']} pending; slashed {self.slashed} wei",
        ]  # fmt: skip
        lines += [f"evicted {host}: {why}" for host, why in self.evicted.items()]
        return "\n".join(lines)


class CallStats:
    """Per-host counters and call latencies, filled from the worker threads of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.expert_tokens = 0

    def success(self, host: str, tokens: int, latency: float) -> None:
        with self._lock:
            self.calls[host] += 1
            self.expert_tokens += tokens
            self.latencies.append(latency)

    def failure(self, host: str) -> None:
        with self._lock:
            self.calls[host] += 1
            self.failures[host] += 1

    def percentile_ms(self, q: float) -> float | None:
        with self._lock:
            return float(np.percentile(self.latencies, q) * 1000) if self.latencies else None


def dispute_counts(records: list[DisputeRecord]) -> dict[str, int]:
    """opened = won + lost + pending; a challenge that failed before its dispute opened ("error") is not counted."""
    return {
        "opened": sum(r.dispute_id is not None or r.outcome is None for r in records),
        "won": sum(r.outcome == "fraud" for r in records),
        "lost": sum(r.outcome == "honest" for r in records),
        "pending": sum(r.outcome is None for r in records),
    }
