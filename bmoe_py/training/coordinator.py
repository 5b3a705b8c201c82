"""The coordinator of expert-parallel training (docs/protocol.md 11): the model owner runs everything but the experts
(input projection, position embedding, gate, norms, head, loss, and its own Adam on those); each expert is trained
by the edge node named its trainer on chain, over the training API.

    session = TrainingSession(chain, ipfs, model_id, trainers, data, TrainingConfig(rounds=5))
    for result in session.run():      # one RoundResult per round: accuracy, expert load, flags, drops
        print(result.round, result.accuracy)

One batch: route the tokens, send each expert's tokens to its trainer (all experts concurrently), mix, loss (+ the
load-balancing loss), then a two-phase backward. The trainers' outputs enter the local graph as leaf tensors, so
`loss.backward()` stops at them and leaves their gradients there; those go to the trainers, which step their
experts and answer the gradients of the expert inputs; `torch.autograd.backward(expert_inputs, grad_inputs)` then
finishes the local gradients (through the norm, the position embedding and the input projection), and the local
Adam steps.

End of a round: every trainer finishes (pins and registers its checkpoint as the expert's next version, commits
the round's steps), the coordinator loads the new versions from IPFS checked against the chain, pins and registers
the new gate bundle (`setGate`), and evaluates the test accuracy and expert load with exactly the registered files.

Verified mode adds, per round: screening of the trainers against their peers (`screening.py`, flags on chain),
and the consequences of a lost dispute: a trainer slashed since the session started is blacklisted on chain and
dropped; each expert it trained is rolled back (the owner re-publishes the last version no dropped trainer
produced as a new version) and handed to an honest trainer with `setTrainer`.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ..model.moe import Expert, MoEModel
from ..model.weights import encode_gate, gate_root
from ..publisher.fetch import load_float_expert_from_chain, load_gate_from_chain
from ..publisher.records import read_expert
from ..publisher.tasks import create_task
from .client import TrainerClient, TrainerError
from .screening import Flag, ScreeningRecorder, TrainerStats, screen

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..model.data import Dataset
    from ..storage.client import IpfsClient

__all__ = [
    "BatchOutcome", "RoundResult", "Trainer", "TrainingConfig", "TrainingSession", "choose_trainers", "expert_load",
    "imbalance", "two_phase_step",
]

log = logging.getLogger("bmoe.training")

ETHER = 10**18
MODES = ("traditional", "verified")


@dataclass(frozen=True)
class Trainer:
    """An edge node that trains experts: its account (what `setTrainer` names) and its URL."""

    address: str
    url: str


@dataclass(frozen=True)
class TrainingConfig:
    rounds: int = 5
    steps_per_round: int = 10  # batches per round
    batch_size: int = 64
    expert_lr: float = 3e-3  # sent with every backward call; the trainers' Adam uses it
    local_lr: float = 3e-3  # the coordinator's Adam on the gate, embeddings, norms and head
    aux_loss_weight: float | None = None  # default: the model's configured weight
    mode: str = "traditional"  # or "verified": screening, blacklisting and rollback of slashed trainers
    price_per_token: int = 10**9
    escrow: int = ETHER // 10
    eval_samples: int | None = None  # test samples per evaluation (default: all)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")


@dataclass
class RoundResult:
    round: int
    accuracy: float  # test accuracy of the registered model after the round
    train_loss: float  # mean over the round's batches
    load: list[float]  # fraction of the test routing slots per expert
    imbalance_max_mean: float  # max load / mean load (1 = balanced, E = one expert takes everything)
    imbalance_cv: float  # coefficient of variation of the load
    versions: dict[int, int]  # expert -> version registered after the round
    trainers: dict[int, str]  # expert -> trainer address during the round
    stats: list[TrainerStats] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # trainers dropped after this round (slashed)
    rolled_back: dict[int, int] = field(default_factory=dict)  # expert -> version re-published
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round, "accuracy": self.accuracy, "train_loss": self.train_loss, "load": self.load,
            "imbalance_max_mean": self.imbalance_max_mean, "imbalance_cv": self.imbalance_cv,
            "versions": {str(k): v for k, v in self.versions.items()},
            "trainers": {str(k): v for k, v in self.trainers.items()},
            "stats": [s.__dict__ for s in self.stats],
            "flags": [{"node": f.node, "expert": f.expert, "reason": f.reason, "score": f.score} for f in self.flags],
            "dropped": self.dropped, "rolled_back": {str(k): v for k, v in self.rolled_back.items()},
            "seconds": self.seconds,
        }  # fmt: skip


def choose_trainers(
    chain: Chain, model_id: int, num_experts: int, *, only: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> tuple[dict[int, Trainer], list[Trainer]]:  # fmt: skip
    """A trainer per expert among its active hosts (registry `hosts`, `isActiveHost`, `endpointOf`), spreading the
    experts over as many nodes as possible; and the spares, the hosts that got no expert (they take over the experts
    of a dropped trainer). `only` restricts the choice to those addresses, `exclude` leaves some out (blacklisted).

    Raises ValueError naming the experts that no eligible host serves.
    """
    registry = chain.registry
    wanted = {a.lower() for a in only} if only else None
    unwanted = {a.lower() for a in exclude}
    hosts: dict[int, dict[str, str]] = {}
    for e in range(num_experts):
        hosts[e] = {}
        for address in chain.call(registry.functions.hosts(model_id, e)):
            if (wanted is not None and address.lower() not in wanted) or address.lower() in unwanted:
                continue
            if chain.call(registry.functions.isActiveHost(model_id, e, address)):
                hosts[e][address] = chain.call(registry.functions.endpointOf(model_id, e, address))
    orphans = [e for e, found in hosts.items() if not found]
    if orphans:
        raise ValueError(f"model {model_id}: no eligible active host for experts {orphans}")
    load: dict[str, int] = {}
    trainers: dict[int, Trainer] = {}
    for e in sorted(hosts, key=lambda e: len(hosts[e])):  # the experts with the fewest hosts choose first
        address = min(hosts[e], key=lambda a: (load.get(a, 0), a.lower()))
        load[address] = load.get(address, 0) + 1
        trainers[e] = Trainer(address, hosts[e][address])
    spares = {a: Trainer(a, url) for found in hosts.values() for a, url in found.items() if a not in load}
    return dict(sorted(trainers.items())), list(spares.values())


def expert_load(indices: torch.Tensor, num_experts: int) -> list[float]:
    """Fraction of the routing slots (tokens x k) that went to each expert."""
    counts = torch.bincount(indices.reshape(-1), minlength=num_experts).double()
    return (counts / counts.sum()).tolist()


def imbalance(load: Sequence[float]) -> tuple[float, float]:
    """(max / mean, coefficient of variation) of an expert load vector."""
    values = np.asarray(load, dtype=np.float64)
    mean = float(values.mean())
    return float(values.max() / mean), float(values.std() / mean)


@dataclass(frozen=True)
class BatchOutcome:
    loss: float  # cross-entropy + aux weight x load-balancing loss
    sample_losses: torch.Tensor  # [batch] cross-entropy per sample (detached)
    top1: torch.Tensor  # [tokens] each token's first expert


def two_phase_step(
    model: MoEModel, x: torch.Tensor, y: torch.Tensor, aux_weight: float,
    forward: Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]],
    backward: Callable[[dict[int, np.ndarray]], dict[int, np.ndarray]],
) -> BatchOutcome:  # fmt: skip
    """Forward and backward of one batch with remote experts; accumulates the local parameters' gradients.

    `forward` maps each expert's tokens to its outputs, `backward` each expert's output gradients to its input
    gradients (both: expert index -> float32 array). The outputs enter the graph as leaves, so the first backward
    stops there; the second, from the experts' inputs with the returned input gradients, completes the local
    gradients exactly as if the experts had been local (tests/training/test_coordinator.py checks it).
    """
    sent: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # expert -> (its inputs in the graph, output leaf)

    def runner(layer: int, batches: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        outputs = forward({e: t.detach().numpy() for e, t in batches.items()})
        for e, t in batches.items():
            sent[e] = (t, torch.from_numpy(np.array(outputs[e], dtype=np.float32)).requires_grad_(True))  # a writable copy
        return {e: leaf for e, (_, leaf) in sent.items()}

    out = model(x, runner)
    per_sample = F.cross_entropy(out.logits, y, reduction="none")
    loss = per_sample.mean() + aux_weight * out.aux_loss
    loss.backward(retain_graph=True)  # the graph up to the experts' inputs is needed again below
    grads = {e: (leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)).numpy() for e, (_, leaf) in sent.items()}
    grad_inputs = backward(grads)
    experts = sorted(sent)
    torch.autograd.backward(
        [sent[e][0] for e in experts], [torch.from_numpy(np.array(grad_inputs[e], dtype=np.float32)) for e in experts]
    )
    return BatchOutcome(float(loss.detach()), per_sample.detach(), out.routings[0].indices[:, 0])


@dataclass
class _RoundState:
    """What one round accumulates per expert for screening."""

    steps: dict[int, int] = field(default_factory=dict)
    grad_norm: dict[int, list[float]] = field(default_factory=dict)
    update_norm: dict[int, list[float]] = field(default_factory=dict)
    out_sq: dict[int, float] = field(default_factory=dict)
    in_sq: dict[int, float] = field(default_factory=dict)
    loss_sum: dict[int, float] = field(default_factory=dict)
    loss_count: dict[int, int] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)  # experts whose trainer failed a call this round


class TrainingSession:
    """Trains a published single-layer Float model across `trainers` (expert -> Trainer), as the model owner."""

    def __init__(
        self, chain: Chain, ipfs: IpfsClient, model_id: int, trainers: Mapping[int, Trainer], data: Dataset,
        config: TrainingConfig = TrainingConfig(), *, spares: Sequence[Trainer] = (),
    ) -> None:  # fmt: skip
        self.chain = chain
        self.ipfs = ipfs
        self.model_id = model_id
        self.data = data
        self.config = config
        self.spares = list(spares)  # honest trainers that take over the experts of a dropped one
        gate = load_gate_from_chain(chain, ipfs, model_id).gate
        self.model: MoEModel = gate.model
        if self.model.config.num_layers != 1:
            raise ValueError("only single-MoE-layer models can be trained (protocol 11)")
        self.num_experts = self.model.config.num_experts
        missing = set(range(self.num_experts)) - set(trainers)
        if missing:
            raise ValueError(f"experts {sorted(missing)} have no trainer")
        self.trainers: dict[int, Trainer] = dict(trainers)
        self.clients = {t.address: TrainerClient(t.url, t.address) for t in {*self.trainers.values(), *self.spares}}
        self.dropped: set[str] = set()
        self.round = 0
        self.from_block = int(chain.w3.eth.block_number)
        # version -> who produced it, per expert: the rollback target is the last version of an undropped producer
        self.producers: dict[int, dict[int, str]] = {}
        self.experts: dict[int, Expert] = {}
        for e in range(self.num_experts):
            loaded = load_float_expert_from_chain(chain, ipfs, model_id, e)
            self.experts[e] = loaded.expert
            self.producers[e] = {loaded.record.version: chain.address}
        self.versions = {e: max(self.producers[e]) for e in range(self.num_experts)}
        self.aux_weight = self.model.config.aux_loss_weight if config.aux_loss_weight is None else config.aux_loss_weight
        local = [p for name, p in self.model.named_parameters() if ".experts." not in name]
        for block in self.model.blocks:
            block.experts.requires_grad_(False)  # NaN placeholders: the trainers hold the experts
        self.optimizer = torch.optim.Adam(local, lr=config.local_lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.recorder = ScreeningRecorder(chain, model_id) if config.mode == "verified" else None
        if self.recorder is not None:
            listed = sorted({t.address for t in [*self.trainers.values(), *self.spares] if self.recorder.is_blacklisted(t.address)})
            if listed:
                raise ValueError(f"blacklisted nodes cannot train model {model_id}: {', '.join(listed)}")
        self.task_id = create_task(chain, model_id, config.price_per_token, config.escrow)
        for e, trainer in self.trainers.items():
            self._set_trainer(e, trainer)
        self.pool = ThreadPoolExecutor(self.num_experts)

    # ------------------------------------------------------------------ public

    def run(self, rounds: int | None = None) -> Iterator[RoundResult]:
        for _ in range(self.config.rounds if rounds is None else rounds):
            yield self.train_round()

    def evaluate(self) -> tuple[float, list[float]]:
        """(test accuracy, expert load) of the model with the local copies of the registered expert versions."""
        x, y = self.data.x_test, self.data.y_test
        if self.config.eval_samples is not None and self.config.eval_samples < len(x):
            pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.config.seed))[: self.config.eval_samples]
            x, y = x[pick], y[pick]
        runner = lambda layer, batches: {e: self.experts[e](t) for e, t in batches.items()}  # noqa: E731
        self.model.eval()
        correct, indices = 0, []
        with torch.no_grad():
            for i in range(0, len(x), 1024):
                out = self.model(x[i : i + 1024], runner)
                correct += int((out.logits.argmax(-1) == y[i : i + 1024]).sum())
                indices.append(out.routings[0].indices)
        self.model.train()
        return correct / len(x), expert_load(torch.cat(indices), self.num_experts)

    def close(self) -> None:
        self.pool.shutdown(wait=False)

    # ------------------------------------------------------------------ one round

    def train_round(self) -> RoundResult:
        started = time.monotonic()
        self.round += 1
        round_ = self.round
        dropped, rolled_back = [], {}
        if self.config.mode == "verified":
            dropped, rolled_back = self._drop_slashed()  # a dispute may have ended between rounds
        base = {e: int(self.chain.call(self.chain.registry.functions.latestVersion(self.model_id, e))) for e in range(self.num_experts)}
        trainers = dict(self.trainers)
        state = _RoundState()
        losses = []
        self.model.train()
        for _ in range(self.config.steps_per_round):
            pick = torch.randint(len(self.data.x_train), (self.config.batch_size,), generator=self.generator)
            losses.append(self._train_batch(self.data.x_train[pick], self.data.y_train[pick], round_, base, trainers, state))
        finished = self._finish(round_, base, trainers, state)
        self._load_versions(finished, trainers)
        self._publish_gate()
        stats = self._stats(state, trainers)
        flags = []
        if self.config.mode == "verified":
            # an expert rolled back at the start of this round restarted from older weights under a new trainer: its
            # numbers differ from its peers' for that reason alone, so it is screened again from the next round
            flags = screen([s for s in stats if s.expert not in rolled_back])
            if flags:
                self.recorder.record(flags, round_)
            more, more_rolled = self._drop_slashed()
            dropped += more
            rolled_back.update(more_rolled)
        accuracy, load = self.evaluate()
        max_mean, cv = imbalance(load)
        result = RoundResult(
            round_, accuracy, float(np.mean(losses)), load, max_mean, cv, dict(self.versions),
            {e: t.address for e, t in trainers.items()}, stats, flags, dropped, rolled_back, time.monotonic() - started,
        )  # fmt: skip
        log.info("round %d: accuracy %.3f, loss %.3f, imbalance %.2f, flags %d, dropped %s",
                 round_, accuracy, result.train_loss, max_mean, len(flags), dropped)  # fmt: skip
        return result

    def _train_batch(
        self, x: torch.Tensor, y: torch.Tensor, round_: int, base: dict[int, int], trainers: dict[int, Trainer],
        state: _RoundState,
    ) -> float:  # fmt: skip
        def forward(batches: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
            futures = {
                e: self.pool.submit(self._forward, trainers[e], e, base[e], round_, state.steps.get(e, 0), t)
                for e, t in batches.items()
                if e not in state.failed
            }  # fmt: skip
            outputs = {}
            for e, t in batches.items():
                outputs[e] = self._result(futures[e], e, state) if e in futures else None
                if outputs[e] is None:  # a failed trainer's expert sits the round out: the residual path carries on
                    outputs[e] = np.zeros_like(t)
                    continue
                state.out_sq[e] = state.out_sq.get(e, 0.0) + float(np.sum(np.square(outputs[e], dtype=np.float64)))
                state.in_sq[e] = state.in_sq.get(e, 0.0) + float(np.sum(np.square(t, dtype=np.float64)))
            return outputs

        def backward(grads: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
            futures = {
                e: self.pool.submit(self._backward, trainers[e], e, base[e], round_, state.steps.get(e, 0), g)
                for e, g in grads.items()
                if e not in state.failed
            }  # fmt: skip
            grad_inputs = {e: np.zeros((g.shape[0], self.model.config.d_model), np.float32) for e, g in grads.items()}
            for e, future in futures.items():
                answer = self._result(future, e, state)
                if answer is None:
                    continue
                state.steps[e] = state.steps.get(e, 0) + 1
                state.grad_norm.setdefault(e, []).append(answer.stats.grad_norm)
                state.update_norm.setdefault(e, []).append(answer.stats.update_norm)
                grad_inputs[e] = answer.grad_inputs
            return grad_inputs

        self.optimizer.zero_grad(set_to_none=True)
        outcome = two_phase_step(self.model, x, y, self.aux_weight, forward, backward)
        self.optimizer.step()
        # screening: each token's sample loss counts for the token's top-1 expert
        token_loss = outcome.sample_losses.repeat_interleave(self.model.config.num_tokens)
        for e in outcome.top1.unique().tolist():
            mask = outcome.top1 == e
            state.loss_sum[e] = state.loss_sum.get(e, 0.0) + float(token_loss[mask].sum())
            state.loss_count[e] = state.loss_count.get(e, 0) + int(mask.sum())
        return outcome.loss

    def _result(self, future: Any, e: int, state: _RoundState) -> Any:
        """The answer of a trainer call, or None when the trainer failed (the expert then sits the round out:
        its steps so far are never finished, so no version comes of them)."""
        try:
            return future.result()
        except TrainerError as exc:
            log.warning("round %d: expert %d's trainer failed, the expert sits the round out: %s", self.round, e, exc)
            state.failed.add(e)
            return None

    def _forward(self, trainer: Trainer, e: int, version: int, round_: int, step: int, tokens: np.ndarray) -> np.ndarray:
        client = self.clients[trainer.address]
        return client.forward(self.task_id, self.model_id, e, version, round_, step, tokens).outputs

    def _backward(self, trainer: Trainer, e: int, version: int, round_: int, step: int, grad: np.ndarray):
        client = self.clients[trainer.address]
        return client.backward(self.task_id, self.model_id, e, version, round_, step, self.config.expert_lr, grad)

    def _finish(self, round_: int, base: dict[int, int], trainers: dict[int, Trainer], state: _RoundState) -> dict[int, Any]:
        """/v1/train/finish on every trainer that took a step this round (concurrently)."""
        futures = {
            e: self.pool.submit(self.clients[trainers[e].address].finish, self.task_id, self.model_id, e, base[e], round_)
            for e in sorted(state.steps)
            if e not in state.failed
        }
        finished = {e: self._result(f, e, state) for e, f in futures.items()}
        return {e: done for e, done in finished.items() if done is not None}

    def _load_versions(self, finished: dict[int, Any], trainers: dict[int, Trainer]) -> None:
        """Loads each new version from IPFS, verified against the chain (CID, root, shapes)."""
        for e, done in finished.items():
            loaded = load_float_expert_from_chain(self.chain, self.ipfs, self.model_id, e, done.next_version)
            self.experts[e] = loaded.expert
            self.versions[e] = done.next_version
            self.producers[e][done.next_version] = trainers[e].address

    def _publish_gate(self) -> None:
        data = encode_gate(self.model, None)
        cid = self.ipfs.add_bytes(data, f"gate-{self.model_id}-round-{self.round}.safetensors")
        self.ipfs.pin_add(cid)
        self.chain.send(self.chain.registry.functions.setGate(self.model_id, cid, gate_root(self.model, None)))

    def _stats(self, state: _RoundState, trainers: dict[int, Trainer]) -> list[TrainerStats]:
        stats = []
        # an expert that was nobody's first choice this round has no loss of its own: it gets the round's mean,
        # which says nothing for or against its trainer
        mean_loss = sum(state.loss_sum.values()) / max(1, sum(state.loss_count.values()))
        for e in sorted(set(state.steps) - state.failed):
            count = state.loss_count.get(e, 0)
            stats.append(TrainerStats(
                trainers[e].address, e,
                loss=state.loss_sum[e] / count if count else mean_loss,
                grad_norm=float(np.mean(state.grad_norm[e])),
                update_norm=float(np.mean(state.update_norm[e])),
                output_ratio=math.sqrt(state.out_sq[e] / max(state.in_sq[e], 1e-30)),
            ))  # fmt: skip
        return stats

    # ------------------------------------------------------------------ verified mode

    def slashed_trainers(self) -> set[str]:
        """Trainers of this session slashed since it started (Staking's Slashed events)."""
        return set(self._slashes())

    def _slashes(self) -> dict[str, bytes]:
        """Trainer -> hash of the first transaction that slashed it since the session started."""
        ours = {t.address.lower(): t.address for t in [*self.trainers.values(), *self.spares]}
        ours.update({a.lower(): a for a in self.dropped})
        slashes: dict[str, bytes] = {}
        for log in self.chain.staking.events.Slashed.get_logs(from_block=self.from_block):
            account = log["args"]["account"].lower()
            if account in ours:
                slashes.setdefault(ours[account], bytes(log["transactionHash"]))
        return slashes

    def _drop_slashed(self) -> tuple[list[str], dict[int, int]]:
        """Blacklists every newly slashed trainer (evidence: the slashing transaction), rolls its experts back and
        hands them to honest trainers."""
        slashes = self._slashes()
        newly = sorted(set(slashes) - self.dropped)
        rolled_back: dict[int, int] = {}
        for node in newly:
            self.dropped.add(node)
            assert self.recorder is not None
            self.recorder.blacklist(node, slashes[node])
            for e, trainer in list(self.trainers.items()):
                if trainer.address == node:
                    rolled_back[e] = self._roll_back(e)
                    self._reassign(e)
        return newly, rolled_back

    def _roll_back(self, e: int) -> int:
        """Re-publishes the last version of expert `e` that no dropped trainer produced, as a new version."""
        good = max(v for v, producer in self.producers[e].items() if producer not in self.dropped)
        record = read_expert(self.chain, self.model_id, e, good)
        receipt = self.chain.send(self.chain.registry.functions.publishExpert(
            self.model_id, e, record.weights_cid, record.weights_root, [layer.as_tuple() for layer in record.layers]
        ))  # fmt: skip
        version = int(self.chain.events(receipt, "ExpertRegistry", "ExpertPublished")[0]["version"])
        self.experts[e] = load_float_expert_from_chain(self.chain, self.ipfs, self.model_id, e, version).expert
        self.producers[e][version] = self.chain.address
        self.versions[e] = version
        log.info("expert %d rolled back to version %d (re-published as version %d)", e, good, version)
        return version

    def _reassign(self, e: int) -> None:
        """Hands expert `e` to the undropped trainer that hosts it with the fewest experts (spares first)."""
        registry = self.chain.registry
        candidates = list({
            t.address: t for t in [*self.spares, *self.trainers.values()]
            if t.address not in self.dropped and self.chain.call(registry.functions.isActiveHost(self.model_id, e, t.address))
        }.values())  # fmt: skip
        if not candidates:
            raise RuntimeError(f"no honest trainer left that hosts expert {e}")
        load = {t.address: sum(1 for x in self.trainers.values() if x.address == t.address) for t in candidates}
        trainer = min(candidates, key=lambda t: load[t.address])
        self.trainers[e] = trainer
        self._set_trainer(e, trainer)

    def _set_trainer(self, e: int, trainer: Trainer) -> None:
        self.chain.send(self.chain.registry.functions.setTrainer(self.model_id, e, trainer.address))

