"""The publisher's inference runtime: the gate runs here, the experts run on edge nodes.

    session = InferenceSession(chain, ipfs, model_id, Policy.parse("redundant:3"))   # creates and funds a task
    report = session.run(x, y)                                                        # a TaskReport
    session.close()

For every MoE layer the local gate routes each token to its top-k experts; each expert's tokens are quantised with
the expert's input scale (from the verified gate bundle), cut into requests of at most `max_request_tokens`, and
sent concurrently to hosts that the registry lists as active. Every answer is verified (`remote.verify_response`)
before its outputs are dequantised and mixed back, exactly as `ExactMoE` does in process, so an honest network
gives bit-identical logits. The verification policy decides how many hosts answer each request and what happens
to a host that is outvoted (`policies`, `challenge`).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..crypto.leaves import request_id
from ..protocol.wire import MAX_TOKENS_PER_REQUEST, ForwardRequest
from ..validator.fraud import FraudProofDriver
from .challenge import challenge_answer
from .fetch import load_gate_from_chain
from .hosts import ExpertUnavailable, HostDirectory
from .policies import Policy, majority_vote
from .records import Mode, read_expert
from .remote import Answer, HostError, InvalidResponse
from .tasks import CallStats, DisputeRecord, TaskReport, create_task, dispute_counts, task_state

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["ExpertUnavailable", "InferenceSession", "Policy", "SessionError", "TaskReport"]

log = logging.getLogger("bmoe.publisher")


class SessionError(RuntimeError):
    """The session cannot run: a float model, a task of another model or publisher, a closed task."""


@dataclass(frozen=True)
class _Expert:
    index: int  # registry index: MoE layer * experts per layer + expert
    version: int
    in_dim: int
    out_dim: int
    input_scale: float
    output_scale: float


class InferenceSession:
    """One task of one model under one verification policy. Not re-entrant: one `run` at a time."""

    def __init__(
        self,
        chain: Chain,
        ipfs: IpfsClient,
        model_id: int,
        policy: Policy | str = "none",
        *,
        price_per_token: int = 10**9,
        escrow: int = 5 * 10**16,
        call_timeout: float = 10.0,
        task_id: int | None = None,
        max_request_tokens: int = MAX_TOKENS_PER_REQUEST,
        dispute_timeout: float = 120.0,
        workers: int = 16,
    ) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self.model_id = model_id
        self.policy = Policy.parse(policy) if isinstance(policy, str) else policy
        self.max_request_tokens = max(1, min(max_request_tokens, MAX_TOKENS_PER_REQUEST))
        self.dispute_timeout = dispute_timeout
        loaded = load_gate_from_chain(chain, ipfs, model_id)
        if loaded.model.mode != Mode.EXACT_INT8 or loaded.gate.input_scales is None:
            raise SessionError(f"model {model_id} is not an exact int8 model: the publisher runtime serves only those")
        self.gate = loaded.gate
        self.model = loaded.gate.model.eval()
        self.config = self.model.config
        self.experts = self._read_experts()
        self.task_id = self._open_task(task_id, price_per_token, escrow)
        self.hosts = HostDirectory(chain, model_id, [e.index for e in self.experts], call_timeout=call_timeout)
        # Two pools so that a call never waits on a slot its own pool must free: expert requests fan out to hosts.
        self._requests = ThreadPoolExecutor(workers, thread_name_prefix="bmoe-request")
        self._http = ThreadPoolExecutor(workers * max(1, self.policy.replicas), thread_name_prefix="bmoe-http")
        self._disputes = ThreadPoolExecutor(2, thread_name_prefix="bmoe-dispute")
        self._driver: FraudProofDriver | None = None  # made on the first challenge; caches verified expert weights
        self._pending: list[tuple[str, int, Future]] = []
        self._challenged: set[str] = set()
        self._lock = threading.Lock()
        # Fresh nonces per session: a rerun of the same task must not reuse a request id (nodes answer 409).
        self._nonce = secrets.randbits(64) << 32
        self._stats = CallStats()

    # ------------------------------------------------------------------ setup

    def _read_experts(self) -> list[_Expert]:
        experts = []
        for layer in range(self.config.num_layers):
            for e in range(self.config.num_experts):
                index = layer * self.config.num_experts + e
                record = read_expert(self.chain, self.model_id, index)
                if not record.published:
                    raise SessionError(f"model {self.model_id} expert {index} has no published version")
                experts.append(_Expert(
                    index, record.version, record.layers[0].in_dim, record.layers[-1].out_dim,
                    float(self.gate.input_scales[layer, e]), float(self.gate.output_scales[layer, e]),
                ))  # fmt: skip
        return experts

    def _open_task(self, task_id: int | None, price_per_token: int, escrow: int) -> int:
        if task_id is None:
            task_id = create_task(self.chain, self.model_id, price_per_token, escrow)
            log.info("created task %d for model %d (%d wei escrow at %d wei/token)", task_id, self.model_id, escrow, price_per_token)
            return task_id
        state = task_state(self.chain, task_id)
        if state["publisher"] == "0x" + "0" * 40:
            raise SessionError(f"task {task_id} does not exist")
        if state["model_id"] != self.model_id:
            raise SessionError(f"task {task_id} is for model {state['model_id']}, not {self.model_id}")
        if state["closed"]:
            raise SessionError(f"task {task_id} is closed: nodes could not commit (and be paid for) its results")
        return task_id

    def close(self) -> None:
        for pool in (self._requests, self._http, self._disputes):
            pool.shutdown(wait=False, cancel_futures=True)
        self.hosts.close()

    def __enter__(self) -> InferenceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def run(self, x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray | None = None, batch_size: int = 256) -> TaskReport:
        """Classifies `x` [samples, input_dim] through the network; with labels `y`, reports the accuracy.

        Returns after every challenge this run raised has settled or `dispute_timeout` passed.
        """
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        self._stats = stats = CallStats()
        started = time.perf_counter()
        predictions = []
        for start in range(0, x.shape[0], batch_size):
            self.hosts.refresh()
            logits = self.model(x[start : start + batch_size], self._run_experts).logits
            predictions.append(logits.argmax(-1))
        seconds = time.perf_counter() - started
        records = self._settle_disputes()
        preds = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
        accuracy = None
        if y is not None and len(preds):
            accuracy = float((preds == torch.as_tensor(np.asarray(y)).long()).float().mean())
        samples = int(x.shape[0])
        tokens = samples * self.config.num_tokens * self.config.num_layers * self.config.k
        return TaskReport(
            task_id=self.task_id, model_id=self.model_id, policy=str(self.policy), samples=samples, tokens=tokens,
            expert_tokens=stats.expert_tokens, accuracy=accuracy, predictions=preds.tolist(), seconds=seconds,
            tokens_per_s=tokens / seconds if seconds > 0 else 0.0,
            calls_per_host=dict(stats.calls), failures_per_host=dict(stats.failures),
            latency_p50_ms=stats.percentile_ms(50), latency_p99_ms=stats.percentile_ms(99),
            disputes=dispute_counts(records), slashed=sum(r.slashed for r in records),
            evicted=dict(self.hosts.evicted), dispute_records=records,
        )  # fmt: skip

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits for one batch through the network (no report)."""
        with torch.no_grad():
            self.hosts.refresh()
            return self.model(torch.as_tensor(x, dtype=torch.float32), self._run_experts).logits

    def _run_experts(self, layer: int, batches: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """`ExpertRunner`: every expert's tokens of one MoE layer, through the network, concurrently."""
        jobs: dict[int, list[Future]] = {}
        for e, tokens in batches.items():
            expert = self.experts[layer * self.config.num_experts + e]
            # The same rounding as QuantizedExpert.quantize_input, so that results equal ExactMoE's bit for bit.
            q = torch.round(tokens / expert.input_scale).clamp(-128, 127).to(torch.int8).cpu().numpy()
            jobs[e] = [
                self._requests.submit(self._call, expert, q[i : i + self.max_request_tokens])
                for i in range(0, len(q), self.max_request_tokens)
            ]
        outputs = {}
        for e, futures in jobs.items():
            expert = self.experts[layer * self.config.num_experts + e]
            y = np.concatenate([f.result() for f in futures])
            outputs[e] = torch.from_numpy(y).to(torch.float32) * expert.output_scale
        return outputs

    def _request(self, expert: _Expert, tokens: np.ndarray) -> ForwardRequest:
        with self._lock:
            self._nonce += 1
            nonce = self._nonce
        rid = request_id(self.task_id, self.chain.address, nonce)
        return ForwardRequest(self.task_id, self.model_id, expert.index, expert.version, rid, tokens)

    def _call(self, expert: _Expert, tokens: np.ndarray) -> np.ndarray:
        """One request's int8 outputs, from as many hosts as the policy asks for."""
        request = self._request(expert, tokens)
        wanted = self.policy.replicas if self.policy.kind == "redundant" else 1
        answers, tried = self._gather(expert, request, wanted)
        if not answers:
            raise ExpertUnavailable(expert.index, tried)
        if len(answers) == 1:
            if wanted > 1:
                log.warning("expert %d: only %s answered, accepting it unverified", expert.index, answers[0].host)
            return answers[0].outputs
        vote = majority_vote([a.outputs for a in answers])
        for answer, wrong in zip(answers, vote.outvoted):
            if wrong:
                self._outvoted(expert, answer, wrong)
        if not vote.decided.all():
            undecided = int((~vote.decided).sum())
            raise ExpertUnavailable(expert.index, {a.host: f"no majority on {undecided} tokens" for a in answers})
        return vote.accepted

    def _gather(self, expert: _Expert, request: ForwardRequest, wanted: int) -> tuple[list[Answer], dict[str, str]]:
        """Up to `wanted` verified answers from distinct hosts; a failed host is replaced by the next candidate."""
        candidates = self.hosts.candidates(expert.index)
        answers: list[Answer] = []
        tried: dict[str, str] = {}
        while len(answers) < wanted and candidates:
            wave, candidates = candidates[: wanted - len(answers)], candidates[wanted - len(answers) :]
            futures = {
                self._http.submit(host.forward, request, self.chain.chain_id, self.chain.ledger.address, expert.out_dim): host
                for host in wave
            }
            for future in as_completed(futures):
                host = futures[future]
                try:
                    answer = future.result()
                except HostError as exc:
                    log.info("expert %d: host %s failed: %s", expert.index, host.address, exc.reason)
                    tried[host.address] = exc.reason
                    self._stats.failure(host.address)
                    if isinstance(exc, InvalidResponse):  # not evidence of anything, but not to be trusted again
                        self.hosts.evict(host.address, f"invalid answer: {exc.reason}")
                    else:
                        self.hosts.mark_down(host.address)
                    continue
                self._stats.success(host.address, len(request.tokens), answer.latency)
                answers.append(answer)
        return answers, tried

    # ------------------------------------------------------------------ disputes

    def _outvoted(self, expert: _Expert, answer: Answer, wrong: list[int]) -> None:
        """Stop routing to a host caught answering wrong, and challenge one of its wrong tokens on chain (once)."""
        self.hosts.evict(answer.host, f"outvoted on {len(wrong)} of {len(answer.outputs)} tokens of expert {expert.index}")
        with self._lock:
            if answer.host in self._challenged:
                return
            self._challenged.add(answer.host)
            if self._driver is None:
                self._driver = FraudProofDriver(self.chain, self.ipfs)
            future = self._disputes.submit(
                challenge_answer, self.chain, self.ipfs, answer, wrong[0], settle_timeout=self.dispute_timeout,
                driver=self._driver,
            )
            self._pending.append((answer.host, expert.index, future))

    def _settle_disputes(self) -> list[DisputeRecord]:
        records = []
        deadline = time.monotonic() + self.dispute_timeout + 30
        with self._lock:
            pending, self._pending = self._pending, []
        for host, expert, future in pending:
            try:
                outcome = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:  # still running: reported as opened but not settled
                records.append(DisputeRecord(host, expert, None, None, detail="not settled before the report"))
                continue
            except Exception as exc:  # a failed challenge is reported, never fatal to the inference already done
                log.error("challenge of %s failed: %s", host, exc)
                records.append(DisputeRecord(host, expert, None, "error", detail=str(exc)))
                continue
            records.append(DisputeRecord(host, expert, outcome.dispute_id, outcome.outcome, outcome.slashed))
        return records
