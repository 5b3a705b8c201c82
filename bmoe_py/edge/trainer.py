"""The trainer's side of training across edge nodes (docs/protocol.md 11): one round of an expert is a strictly
sequential chain of steps (forward s, backward s, forward s+1, ...) on a CPU copy of the round's base version,
with the protocol's Adam (fresh every round), followed by `finish`: pin the checkpoint, register it as the expert's
next version, pin the round's training bundle and commit its root to the training task.

The arithmetic is `bmoe_py.training.records` (`forward`, `train_step`, `make_optimizer`, `TrainWindowBundle`), the
very functions validators replay, so an honest node's bundle replays bit for bit on the same platform.

Restart safety: every forward (inputs, outputs as returned) and backward (lr, grad_outputs, grad_inputs) is stored
before the answer leaves, and each stage of `finish` is recorded as it completes (weights pinned, version
published, bundle pinned, commit mined). After a restart the state of an unfinished round is rebuilt by replaying
its recorded steps from the base version; `finish` resumes where it stopped (called again by the coordinator, or
by the `training` duty), finding a publication or commitment that was mined but not recorded on chain, so that
nothing is published or committed twice.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..chain.client import TransactionReverted
from ..model.moe import Expert
from ..model.weights import encode_float_expert, float_expert_root
from ..protocol.training_wire import (
    StepStats,
    TrainBackwardRequest,
    TrainBackwardResponse,
    TrainFinishRequest,
    TrainFinishResponse,
    TrainForwardRequest,
    TrainForwardResponse,
)
from ..publisher.fetch import load_float_expert_from_chain
from ..publisher.records import Mode, read_expert
from ..training.records import TrainStep, TrainWindowBundle, forward, make_optimizer, train_step
from ._tx import tx_hash
from .executor import LoadedExecutor, load_executor
from .store import EdgeStore, TrainRound

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient
    from .service import EdgeService

__all__ = ["Trainer"]

log = logging.getLogger("bmoe.edge")
_TRAINER_CACHE_SECONDS = 5.0
_FINAL_ERRORS = {"TaskAlreadyClosed", "UnknownTask", "UnknownVersion"}  # a commit that can never succeed
_ZERO_ADDRESS = "0x" + "00" * 20


def _api_error(status: int, code: str, message: str) -> Exception:
    from .service import ApiError  # service imports this module

    return ApiError(status, code, message)


def _out_of_order(message: str) -> Exception:
    return _api_error(409, "out_of_order", message)


@dataclass
class _RoundState:
    """The in-memory state of the round an expert is being trained in: parameters p_s and Adam's moments."""

    round: TrainRound
    module: Expert
    optimizer: torch.optim.Adam
    next_step: int = 0
    forwarded: tuple[np.ndarray, np.ndarray] | None = None  # (inputs, returned outputs) of `next_step` awaiting backward
    grad_norm: float = 0.0  # of the last step, read by the optimizer's pre-step hook


@dataclass
class _Expert:
    lock: threading.Lock = field(default_factory=threading.Lock)
    state: _RoundState | None = None
    trainer_until: float = 0.0  # until when this node is known to be the expert's trainer
    health_trainer: tuple[float, bool | None] = (0.0, None)  # (until when, answer) of the last check for /v1/health


class Trainer:
    """Training rounds of every expert a node hosts; each expert's calls are serialised by its own lock."""

    def __init__(self, chain: Chain, ipfs: IpfsClient, store: EdgeStore, service: EdgeService, mode: Mode) -> None:
        self.chain, self.ipfs, self.store, self.service, self.mode = chain, ipfs, store, service, mode
        self._experts: dict[int, _Expert] = {}
        self._guard = threading.Lock()

    @property
    def model_id(self) -> int:
        return self.service.model_id

    def _expert(self, index: int) -> _Expert:
        with self._guard:
            return self._experts.setdefault(index, _Expert())

    # ------------------------------------------------------------------ the three calls

    def forward(self, request: TrainForwardRequest) -> TrainForwardResponse:
        executor = self._check_expert(request.model_id, request.expert_index)
        if request.tokens.shape[1] != executor.in_dim:
            raise _api_error(400, "bad_request", f"expert {executor.index} takes float32 tokens of shape [n, {executor.in_dim}], "
                             f"got {list(request.tokens.shape)}")  # fmt: skip
        expert = self._expert(request.expert_index)
        with expert.lock:
            self._check_trainer(request.expert_index, expert)
            self.service.check_task(request.task_id)
            state = self._state(request.expert_index, expert)
            if request.step == 0:
                state = self._start_round(request, executor, expert)
            else:
                self._check_step(state, request.task_id, request.expert_version, request.round, request.step)
                if state.forwarded is not None:
                    raise _out_of_order(f"step {request.step} of round {request.round} was forwarded already: its "
                                        "backward is next")  # fmt: skip
            inputs = np.array(request.tokens, dtype="<f4")
            honest = forward(state.module, inputs)
            outputs, manipulated = self.service.attacker(honest)
            self.store.add_train_forward(request.expert_index, request.round, request.step, inputs, outputs,
                                         int(manipulated.sum()))  # fmt: skip
            state.forwarded = (inputs, outputs)
        if manipulated.any():
            log.info("training round %d step %d of expert %d: manipulated %d of %d outputs (attack %s)", request.round,
                     request.step, request.expert_index, int(manipulated.sum()), len(outputs),
                     self.service.attacker.config.mode)  # fmt: skip
        return TrainForwardResponse(request.task_id, self.chain.address, self.model_id, request.expert_index,
                                    request.expert_version, request.round, request.step, outputs)  # fmt: skip

    def backward(self, request: TrainBackwardRequest) -> TrainBackwardResponse:
        self._check_expert(request.model_id, request.expert_index)
        expert = self._expert(request.expert_index)
        with expert.lock:
            self._check_trainer(request.expert_index, expert)
            state = self._state(request.expert_index, expert)
            if state is None:
                raise _out_of_order(f"expert {request.expert_index} has no round in progress: start one with step 0")
            self._check_step(state, request.task_id, request.expert_version, request.round, request.step)
            if state.forwarded is None:
                raise _out_of_order(f"step {request.step} of round {request.round} has not been forwarded yet")
            inputs, outputs = state.forwarded
            if request.grad_outputs.shape != outputs.shape:
                raise _api_error(400, "bad_request", f"grad_outputs must have the outputs' shape {list(outputs.shape)}, "
                                 f"got {list(request.grad_outputs.shape)}")  # fmt: skip
            lr = float(np.float32(request.lr))
            before = _flat(state.module)
            grad_inputs = train_step(state.module, state.optimizer, inputs, np.array(request.grad_outputs, dtype="<f4"), lr)
            after = _flat(state.module)
            self.store.add_train_backward(request.expert_index, request.round, request.step, lr, request.grad_outputs,
                                          grad_inputs)  # fmt: skip
            state.forwarded = None
            state.next_step += 1
            stats = StepStats(state.grad_norm, float(torch.linalg.vector_norm(after - before)),
                              float(torch.linalg.vector_norm(after)), float(np.linalg.norm(outputs)))  # fmt: skip
        return TrainBackwardResponse(request.task_id, self.chain.address, self.model_id, request.expert_index,
                                     request.expert_version, request.round, request.step, stats, grad_inputs)  # fmt: skip

    def finish(self, request: TrainFinishRequest) -> TrainFinishResponse:
        self._check_expert(request.model_id, request.expert_index)
        expert = self._expert(request.expert_index)
        with expert.lock:
            stored = self.store.train_round(request.expert_index, request.round)
            if stored is None or stored.status == "abandoned":
                raise _out_of_order(f"expert {request.expert_index} has no round {request.round} to finish")
            if (stored.task_id, stored.base_version) != (request.task_id, request.expert_version):
                raise _out_of_order(f"round {request.round} is of task {stored.task_id} from version "
                                    f"{stored.base_version}, not task {request.task_id} version {request.expert_version}")  # fmt: skip
            if stored.status == "done":
                return self._result(stored)
            if stored.status == "failed":
                raise _api_error(422, "unknown_task", f"round {request.round} of expert {request.expert_index} could "
                                 f"not be committed to task {stored.task_id}")  # fmt: skip
            self._check_trainer(request.expert_index, expert)
            state = self._state(request.expert_index, expert)
            assert state is not None and state.round.round == request.round
            if state.forwarded is not None:
                raise _out_of_order(f"step {state.next_step} of round {request.round} was forwarded but has no backward")
            if state.next_step == 0:
                raise _out_of_order(f"round {request.round} has no steps")
            return self._finish(state, expert)

    def tick(self) -> None:
        """The `training` duty: completes rounds whose finish was interrupted (a crash, IPFS or the chain away)."""
        for stored in self.store.train_rounds("finishing"):
            expert = self._expert(stored.expert_index)
            with expert.lock:
                state = self._state(stored.expert_index, expert)
                if state is not None and state.round.status == "finishing":
                    log.info("resuming the finish of training round %d of expert %d", stored.round, stored.expert_index)
                    self._finish(state, expert)

    def health(self, index: int) -> dict[str, Any]:
        """Training fields of one expert for /v1/health."""
        latest = self.store.latest_round(index)
        expert = self._expert(index)
        state = expert.state
        finished = [r.round for r in self.store.train_rounds("done") if r.expert_index == index]
        return {
            "trainer": self._is_trainer_cached(index, expert),
            "train_round": latest.round if latest else None,
            "train_status": latest.status if latest else None,
            "train_step": state.next_step if state is not None and latest and state.round.round == latest.round else None,
            "last_finished_round": max(finished) if finished else None,
        }

    # ------------------------------------------------------------------ checks

    def _check_expert(self, model_id: int, index: int) -> LoadedExecutor:
        executor = self.service.executors.get(index)
        if model_id != self.model_id or executor is None:
            raise _api_error(404, "unknown_expert", f"model {model_id} expert {index} is not hosted here (this node "
                             f"serves model {self.model_id} experts {sorted(self.service.executors)})")  # fmt: skip
        if self.mode is not Mode.FLOAT:
            raise _api_error(400, "bad_request", f"model {self.model_id} is exact: only Float models can be trained")
        return executor

    def _trainer_of(self, index: int) -> str:
        return str(self.chain.call(self.chain.registry.functions.trainerOf(self.model_id, index)))

    def _check_trainer(self, index: int, expert: _Expert) -> None:
        """403 unless the registry names this node the expert's trainer (a positive answer is remembered 5 s)."""
        now = time.monotonic()
        if expert.trainer_until > now:
            return
        trainer = self._trainer_of(index)
        if trainer.lower() != self.chain.address.lower():
            named = "no trainer" if trainer == _ZERO_ADDRESS else f"trainer {trainer}"
            raise _api_error(403, "not_trainer", f"model {self.model_id} expert {index} has {named}, not this node "
                             f"{self.chain.address}")  # fmt: skip
        expert.trainer_until = now + _TRAINER_CACHE_SECONDS

    def _is_trainer_cached(self, index: int, expert: _Expert) -> bool | None:
        """For /v1/health, which publishers poll: at most one chain read per expert and 5 s."""
        now = time.monotonic()
        if self.mode is not Mode.FLOAT:
            return False
        if expert.trainer_until > now:
            return True
        until, answer = expert.health_trainer
        if until > now:
            return answer
        try:
            answer = self._trainer_of(index).lower() == self.chain.address.lower()
        except Exception as exc:  # health must answer even when the chain does not: "unknown"
            log.debug("trainerOf(%d) failed: %s", index, exc)
            answer = None
        expert.health_trainer = (now + _TRAINER_CACHE_SECONDS, answer)
        return answer

    def _check_step(self, state: _RoundState | None, task_id: int, version: int, round_: int, step: int) -> None:
        if state is None:
            raise _out_of_order(f"no round in progress: round {round_} must start with step 0")
        r = state.round
        if r.round != round_ or r.status != "training":
            raise _out_of_order(f"round {round_} is not in progress (round {r.round} is {r.status})")
        if (r.task_id, r.base_version) != (task_id, version):
            raise _out_of_order(f"round {r.round} is of task {r.task_id} from version {r.base_version}, not task "
                                f"{task_id} version {version}")  # fmt: skip
        if step != state.next_step:
            raise _out_of_order(f"round {r.round} expects step {state.next_step}, not step {step}")

    # ------------------------------------------------------------------ round state

    def _start_round(self, request: TrainForwardRequest, executor: LoadedExecutor, expert: _Expert) -> _RoundState:
        index, round_ = request.expert_index, request.round
        latest = self.store.latest_round(index)
        if latest is not None and round_ <= latest.round:
            raise _out_of_order(f"round {round_} of expert {index} cannot start: round {latest.round} is {latest.status}; "
                                "a new round must have a greater number")  # fmt: skip
        chain_version = read_expert(self.chain, self.model_id, index).version
        if chain_version != executor.version:  # the owner published a version since this node loaded its expert
            executor = self._reload_executor(index, executor)
        if request.expert_version != executor.version or executor.version != chain_version:
            raise _out_of_order(f"round {round_} must start from the expert's latest version {chain_version} "
                                f"(this node serves version {executor.version}), not version {request.expert_version}")  # fmt: skip
        if latest is not None and latest.status == "training":
            log.warning("training round %d of expert %d abandoned unfinished: round %d starts", latest.round, index, round_)
        elif latest is not None and latest.status == "finishing":
            raise _out_of_order(f"round {latest.round} of expert {index} is still finishing")
        self.store.start_round(index, round_, request.task_id, executor.version, self.chain.w3.eth.block_number)
        stored = self.store.train_round(index, round_)
        assert stored is not None and executor.module is not None
        module = copy.deepcopy(executor.module).cpu().float()
        expert.state = self._new_state(stored, module)
        log.info("training round %d of expert %d started from version %d (task %d)", round_, index, executor.version,
                 request.task_id)  # fmt: skip
        return expert.state

    def _reload_executor(self, index: int, old: LoadedExecutor) -> LoadedExecutor:
        assert old.module is not None
        device = next(old.module.parameters()).device
        executor = load_executor(self.chain, self.ipfs, self.model_id, self.mode, index, device)
        self.service.executors[index] = executor
        log.info("expert %d version %d verified and loaded (published since the node started)", index, executor.version)
        return executor

    def _new_state(self, stored: TrainRound, module: Expert) -> _RoundState:
        # the module is a copy of the served one, whose parameters are frozen for inference (see _serve)
        module.train().requires_grad_(True)
        state = _RoundState(stored, module, make_optimizer(module))

        def record_grad_norm(optimizer: torch.optim.Optimizer, *_: Any) -> None:
            grads = [p.grad.reshape(-1) for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            state.grad_norm = float(torch.linalg.vector_norm(torch.cat(grads))) if grads else 0.0

        # train_step runs backward, step and zero_grad in one call: the gradients are visible just before the step
        state.optimizer.register_step_pre_hook(record_grad_norm)
        return state

    def _state(self, index: int, expert: _Expert) -> _RoundState | None:
        """The in-memory state of the expert's open (training or finishing) round, rebuilt after a restart."""
        latest = self.store.latest_round(index)
        if latest is None or latest.status not in ("training", "finishing"):
            expert.state = None
            return None
        if expert.state is not None and expert.state.round.round == latest.round:
            expert.state.round = latest
            return expert.state
        expert.state = self._restore(latest)
        return expert.state

    def _restore(self, stored: TrainRound) -> _RoundState:
        """Replays the recorded steps of a round from its base version (Adam from fresh, as the round did)."""
        executor = self.service.executors[stored.expert_index]
        if executor.version == stored.base_version and executor.module is not None:
            module = copy.deepcopy(executor.module).cpu().float()
        else:
            module = load_float_expert_from_chain(self.chain, self.ipfs, self.model_id, stored.expert_index,
                                                  stored.base_version).expert  # fmt: skip
        state = self._new_state(stored, module)
        for step in self.store.train_steps(stored.expert_index, stored.round):
            if not step.complete:
                state.forwarded = (step.inputs, step.outputs)
                break
            assert step.grad_outputs is not None and step.lr is not None
            train_step(state.module, state.optimizer, step.inputs, step.grad_outputs, step.lr)
            state.next_step = step.step + 1
        log.info("training round %d of expert %d restored: %d steps replayed", stored.round, stored.expert_index,
                 state.next_step)  # fmt: skip
        return state

    # ------------------------------------------------------------------ finish

    def _finish(self, state: _RoundState, expert: _Expert) -> TrainFinishResponse:
        r = state.round
        index, round_ = r.expert_index, r.round
        if r.status == "training":
            self.store.update_round(index, round_, status="finishing")
        if r.weights_cid is None:
            data = encode_float_expert(state.module)
            cid = self.ipfs.add_bytes(data, name=f"expert-{index}-round-{round_}.safetensors")
            self.store.update_round(index, round_, weights_cid=cid, weights_root=float_expert_root(state.module))
        r = self._reload(index, round_)
        assert r.weights_cid is not None and r.weights_root is not None
        if r.next_version is None:
            self.store.update_round(index, round_, next_version=self._publish(r))
            r = self._reload(index, round_)
        assert r.next_version is not None
        steps = self._steps(index, round_)
        bundle = TrainWindowBundle(self.chain.address, r.task_id, self.model_id, index, r.base_version, round_,
                                   r.next_version, r.weights_cid, r.weights_root, tuple(steps))  # fmt: skip
        if r.bundle_cid is None:
            cid = self.ipfs.add_bytes(bundle.encode(), name=f"train-window-{index}-{round_}.safetensors")
            self.store.update_round(index, round_, bundle_cid=cid, root=bundle.root)
            r = self._reload(index, round_)
        assert r.bundle_cid is not None and r.root == bundle.root
        self._commit(r, bundle, state.module)
        self._serve(index, r.next_version, state.module)
        expert.state = None
        return self._result(self._reload(index, round_))

    def _reload(self, index: int, round_: int) -> TrainRound:
        stored = self.store.train_round(index, round_)
        assert stored is not None
        return stored

    def _steps(self, index: int, round_: int) -> list[TrainStep]:
        steps = []
        for s in self.store.train_steps(index, round_):
            assert s.complete and s.lr is not None and s.grad_outputs is not None and s.grad_inputs is not None
            steps.append(TrainStep(s.step, s.lr, s.inputs, s.grad_outputs, s.outputs, s.grad_inputs))
        return steps

    def _publish(self, r: TrainRound) -> int:
        """Registers the checkpoint as the expert's next version (or finds it registered before a restart)."""
        registry = self.chain.registry
        latest = read_expert(self.chain, self.model_id, r.expert_index)
        if latest.version > r.base_version and latest.weights_root == r.weights_root and latest.weights_cid == r.weights_cid:
            log.info("round %d of expert %d: version %d was already published before a restart", r.round,
                     r.expert_index, latest.version)  # fmt: skip
            return latest.version
        base = read_expert(self.chain, self.model_id, r.expert_index, r.base_version)
        receipt = self.chain.send(registry.functions.publishExpert(
            self.model_id, r.expert_index, r.weights_cid, r.weights_root, [layer.as_tuple() for layer in base.layers]
        ))  # fmt: skip
        version = int(self.chain.events(receipt, "ExpertRegistry", "ExpertPublished")[0]["version"])
        log.info("training round %d of expert %d: published version %d (%s, root 0x%s), tx %s, gas %d", r.round,
                 r.expert_index, version, r.weights_cid, r.weights_root.hex(), tx_hash(receipt), receipt["gasUsed"])  # fmt: skip
        return version

    def _commit(self, r: TrainRound, bundle: TrainWindowBundle, module: Expert) -> None:
        """Commits the round's root to the training task (once: a commit mined before a restart is found again)."""
        ledger = self.chain.ledger
        logs = ledger.events.CommitmentPosted().get_logs(
            from_block=r.from_block, argument_filters={"node": self.chain.address, "taskId": r.task_id}
        )
        for entry in logs:
            c = entry["args"]["commitment"]
            if bytes(c["root"]) == bundle.root and not c["fromReceipt"] and c["expertIndex"] == r.expert_index:
                self.store.commit_round(r.expert_index, r.round, bundle.token_count, int(c["postedAt"]), tx_hash(entry))
                log.info("round %d of expert %d was already committed before a restart", r.round, r.expert_index)
                return
        try:
            receipt = self.chain.send(ledger.functions.commit(
                r.task_id, r.expert_index, r.base_version, bundle.root, bundle.token_count, r.bundle_cid
            ))  # fmt: skip
        except TransactionReverted as exc:
            if exc.name not in _FINAL_ERRORS:
                raise  # escrow may be topped up, stake restored: the next finish (or the duty) tries again
            # The version is registered whatever happens to the payment, so the node serves it all the same.
            self.store.update_round(r.expert_index, r.round, status="failed", note=str(exc))
            assert r.next_version is not None
            self._serve(r.expert_index, r.next_version, module)
            self._expert(r.expert_index).state = None
            raise _api_error(422, "unknown_task", f"round {r.round} of expert {r.expert_index} cannot be committed: "
                             f"{exc}") from None  # fmt: skip
        (event,) = self.chain.events(receipt, "ResultLedger", "CommitmentPosted")
        window = self.store.commit_round(r.expert_index, r.round, bundle.token_count, int(event["commitment"]["postedAt"]),
                                         tx_hash(receipt))  # fmt: skip
        log.info("committed training round %d of expert %d as window %d: %d steps, %d tokens, root 0x%s, bundle %s, "
                 "tx %s, gas %d", r.round, r.expert_index, window, len(bundle), bundle.token_count, bundle.root.hex(),
                 r.bundle_cid, tx_hash(receipt), receipt["gasUsed"])  # fmt: skip

    def _serve(self, index: int, version: int, module: Expert) -> None:
        """From now on /v1/forward (and the next round) use the new version."""
        old = self.service.executors[index]
        assert old.module is not None
        device = next(old.module.parameters()).device
        served = copy.deepcopy(module).to(device).eval()
        for p in served.parameters():
            p.requires_grad_(False)
        self.service.executors[index] = LoadedExecutor(index, version, False, old.in_dim, old.out_dim, module=served)
        log.info("expert %d: serving version %d", index, version)

    def _result(self, r: TrainRound) -> TrainFinishResponse:
        assert r.next_version is not None and r.weights_cid and r.weights_root and r.bundle_cid and r.root
        steps = self.store.train_steps(r.expert_index, r.round)
        return TrainFinishResponse(r.round, len(steps), sum(len(s.inputs) for s in steps), r.next_version,
                                   r.weights_cid, r.weights_root, r.bundle_cid, r.root)  # fmt: skip


def _flat(module: Expert) -> torch.Tensor:
    """The parameters in the optimiser's order as one vector (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in (module.fc1.weight, module.fc1.bias, module.fc2.weight,
                                                        module.fc2.bias)]).clone()  # fmt: skip
