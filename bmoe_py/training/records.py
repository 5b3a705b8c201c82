"""Training steps as the protocol records them (docs/protocol.md 11): the step itself, its leaf, the training window
bundle a trainer pins beside its commitment, and the replay that validators and committee members run.

One step of an expert's training, with parameters p_s and the learning rate the coordinator chose:

    y      = expert(x)                      # answered by /v1/train/forward
    y2     = expert(x)  (with autograd)     # on /v1/train/backward with grad_y
    y2.backward(grad_y); grad_x = x.grad
    Adam.step(lr); zero_grad()              # -> p_{s+1}

Adam's state (betas 0.9/0.999, eps 1e-8, no weight decay) starts fresh every round, so a round can be replayed from
its base version alone. Everything runs in float32 on the CPU here; another device may differ in the last bits,
which the model's tolerance absorbs.

Leaf of step s (one per step, token index 0): the ordinary `TokenLeaf` with
`input_hash = keccak(inputs || grad_outputs || f32le(lr))` and
`output_hash = keccak(outputs || grad_inputs || X)`, X = the next version's weights root for the round's last step
(which binds the registered checkpoint to a challengeable leaf) and 32 zero bytes otherwise.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ..crypto.hashing import keccak256
from ..crypto.leaves import TokenLeaf, token_tree
from ..crypto.merkle import MerkleTree
from ..model.moe import Expert
from ..model.weights import float_expert_root
from ..protocol.tolerance import within_tolerance

__all__ = [
    "TRAIN_BUNDLE_FORMAT",
    "TrainBundleError",
    "checkpoint_matches",
    "checkpoint_root",
    "forward",
    "TrainStep",
    "TrainWindowBundle",
    "ReplayedStep",
    "step_verdict",
    "StepVerdict",
    "judge_step",
    "make_optimizer",
    "replay",
    "step_leaf",
    "step_request_id",
    "train_step",
]

TRAIN_BUNDLE_FORMAT = "bmoe-train-window/1"
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
ZERO32 = bytes(32)


class TrainBundleError(ValueError):
    """Bytes that are not a well-formed training window bundle."""


def step_request_id(task_id: int, expert_index: int, round_: int, step: int) -> bytes:
    """keccak256("bmoe-train-step" || u256 task || u32 expert || u64 round || u64 step), big-endian."""
    return keccak256(
        b"bmoe-train-step" + task_id.to_bytes(32, "big") + expert_index.to_bytes(4, "big")
        + round_.to_bytes(8, "big") + step.to_bytes(8, "big")
    )  # fmt: skip


def make_optimizer(expert: Expert) -> torch.optim.Adam:
    """The protocol's optimiser over fc1.weight, fc1.bias, fc2.weight, fc2.bias, fresh state (one per round)."""
    params = [expert.fc1.weight, expert.fc1.bias, expert.fc2.weight, expert.fc2.bias]
    return torch.optim.Adam(params, lr=1e-3, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=0.0)


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype="<f4")


def forward(expert: Expert, inputs: np.ndarray) -> np.ndarray:
    """y = expert(x) without autograd: what /v1/train/forward answers (before any attack)."""
    with torch.no_grad():
        return expert(torch.from_numpy(_f32(inputs))).numpy().astype("<f4")


def train_step(
    expert: Expert, optimizer: torch.optim.Optimizer, inputs: np.ndarray, grad_outputs: np.ndarray, lr: float
) -> np.ndarray:
    """The backward half of a step: grads from (x, grad_y), one optimiser step at `lr`; returns grad_x.

    The expert's parameters are updated in place (they become p_{s+1}).
    """
    x = torch.from_numpy(_f32(inputs).copy()).requires_grad_(True)
    y = expert(x)
    y.backward(torch.from_numpy(_f32(grad_outputs)))
    for group in optimizer.param_groups:
        group["lr"] = float(np.float32(lr))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    assert x.grad is not None
    return x.grad.numpy().astype("<f4")


@dataclass(frozen=True, eq=False)
class TrainStep:
    """One recorded step: what the coordinator sent (inputs, grad_outputs, lr) and what the node returned."""

    step: int
    lr: float
    inputs: np.ndarray  # f32 [n, in]
    grad_outputs: np.ndarray  # f32 [n, out]
    outputs: np.ndarray  # f32 [n, out], as returned
    grad_inputs: np.ndarray  # f32 [n, in], as returned

    def input_hash(self) -> bytes:
        return keccak256(_f32(self.inputs).tobytes() + _f32(self.grad_outputs).tobytes() + np.float32(self.lr).astype("<f4").tobytes())

    def output_hash(self, next_weights_root: bytes = ZERO32) -> bytes:
        return keccak256(_f32(self.outputs).tobytes() + _f32(self.grad_inputs).tobytes() + bytes(next_weights_root))


def step_leaf(
    node: str, model_id: int, expert_index: int, base_version: int, task_id: int, round_: int, step: TrainStep,
    next_weights_root: bytes = ZERO32,
) -> TokenLeaf:  # fmt: skip
    """The step's leaf; pass the next version's weights root for the round's last step only."""
    return TokenLeaf(
        node, model_id, expert_index, base_version, step_request_id(task_id, expert_index, round_, step.step), 0,
        step.input_hash(), step.output_hash(next_weights_root),
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class TrainWindowBundle:
    """The steps of one round of one expert by one trainer, in step order (steps are numbered 0..S-1)."""

    node: str
    task_id: int
    model_id: int
    expert_index: int
    expert_version: int  # the round's base version
    round: int
    next_version: int
    next_weights_cid: str
    next_weights_root: bytes
    steps: tuple[TrainStep, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise TrainBundleError("a training bundle holds at least one step")
        if [s.step for s in self.steps] != list(range(len(self.steps))):
            raise TrainBundleError("steps must be numbered 0, 1, ... in order")
        if len(self.next_weights_root) != 32:
            raise TrainBundleError("next_weights_root is 32 bytes")
        for s in self.steps:
            n = s.inputs.shape[0] if s.inputs.ndim == 2 else -1
            shapes_ok = n > 0 and all(a.ndim == 2 and a.shape[0] == n for a in (s.grad_outputs, s.outputs, s.grad_inputs))
            if not shapes_ok or s.outputs.shape != s.grad_outputs.shape or s.grad_inputs.shape != s.inputs.shape:
                raise TrainBundleError(f"step {s.step}: tensors must be [n, in] / [n, out] with the same n > 0")

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def token_count(self) -> int:
        return sum(int(s.inputs.shape[0]) for s in self.steps)

    def leaf(self, position: int) -> TokenLeaf:
        last = position == len(self.steps) - 1
        return step_leaf(
            self.node, self.model_id, self.expert_index, self.expert_version, self.task_id, self.round,
            self.steps[position], self.next_weights_root if last else ZERO32,
        )  # fmt: skip

    @cached_property
    def tree(self) -> MerkleTree:
        return token_tree([self.leaf(i) for i in range(len(self))])

    @property
    def root(self) -> bytes:
        return self.tree.root

    def proof(self, position: int) -> list[bytes]:
        return self.tree.proof(position)

    def encode(self) -> bytes:
        from ..model.weights import encode_safetensors

        offsets = np.cumsum([0] + [int(s.inputs.shape[0]) for s in self.steps]).astype(np.int32)
        metadata = {
            "format": TRAIN_BUNDLE_FORMAT,
            "node": self.node,
            "task_id": self.task_id,
            "model_id": self.model_id,
            "expert_index": self.expert_index,
            "expert_version": self.expert_version,
            "round": self.round,
            "next_version": self.next_version,
            "next_weights_cid": self.next_weights_cid,
            "next_weights_root": "0x" + bytes(self.next_weights_root).hex(),
        }
        tensors = {
            "inputs": np.concatenate([_f32(s.inputs) for s in self.steps]),
            "grad_outputs": np.concatenate([_f32(s.grad_outputs) for s in self.steps]),
            "outputs": np.concatenate([_f32(s.outputs) for s in self.steps]),
            "grad_inputs": np.concatenate([_f32(s.grad_inputs) for s in self.steps]),
            "step_offsets": offsets,
            "lrs": np.array([s.lr for s in self.steps], dtype="<f4"),
        }
        return encode_safetensors(tensors, metadata)

    @classmethod
    def decode(cls, data: bytes) -> TrainWindowBundle:
        from ..model.weights import WeightsError, decode_safetensors

        try:
            tensors, meta = decode_safetensors(data)
        except WeightsError as exc:
            raise TrainBundleError(f"not a training bundle: {exc}") from None
        if meta.get("format") != TRAIN_BUNDLE_FORMAT:
            raise TrainBundleError(f"expected a {TRAIN_BUNDLE_FORMAT} file, got format {meta.get('format')!r}")
        try:
            offsets = tensors["step_offsets"].astype(np.int64)
            lrs = tensors["lrs"]
            total = tensors["inputs"].shape[0]
            if offsets.ndim != 1 or len(offsets) != len(lrs) + 1 or offsets[0] != 0 or offsets[-1] != total or np.any(np.diff(offsets) <= 0):
                raise TrainBundleError("step_offsets must rise from 0 to the token count, one step per lr")
            steps = tuple(
                TrainStep(
                    i, float(lrs[i]),
                    *(tensors[name][offsets[i] : offsets[i + 1]] for name in ("inputs", "grad_outputs", "outputs", "grad_inputs")),
                )  # fmt: skip
                for i in range(len(lrs))
            )
            return cls(
                str(meta["node"]), int(meta["task_id"]), int(meta["model_id"]), int(meta["expert_index"]),
                int(meta["expert_version"]), int(meta["round"]), int(meta["next_version"]), str(meta["next_weights_cid"]),
                bytes.fromhex(str(meta["next_weights_root"]).removeprefix("0x")), steps,
            )  # fmt: skip
        except TrainBundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise TrainBundleError(f"malformed training bundle: {exc!r}") from None


# ------------------------------------------------------------------------------------------- replay


@dataclass(frozen=True, eq=False)
class ReplayedStep:
    """What an honest trainer would have returned at a step, from the recorded inputs and gradients."""

    step: int
    outputs: np.ndarray
    grad_inputs: np.ndarray


def replay(expert: Expert, steps: tuple[TrainStep, ...] | list[TrainStep], upto: int | None = None) -> Iterator[ReplayedStep]:
    """Re-executes steps 0..upto (all by default) from `expert` (the base version), updating it in place.

    The recorded inputs, output gradients and learning rates drive the replay, whatever the node returned: a node
    that returned wrong outputs still had its parameters updated with the gradients it was sent.
    """
    optimizer = make_optimizer(expert)
    last = len(steps) - 1 if upto is None else upto
    for s in steps[: last + 1]:
        outputs = forward(expert, s.inputs)
        grad_inputs = train_step(expert, optimizer, s.inputs, s.grad_outputs, s.lr)
        yield ReplayedStep(s.step, outputs, grad_inputs)


@dataclass(frozen=True)
class StepVerdict:
    step: int
    fraud: bool
    reason: str  # "" when honest


def judge_step(
    base_expert: Expert, bundle: TrainWindowBundle, position: int, tolerance: int, next_checkpoint: Expert | None = None
) -> StepVerdict:
    """Whether step `position` of the bundle is fraud under the tolerance rule (protocol 6), applied to its outputs
    and input gradients; for the round's last step also to the final parameters against `next_checkpoint`, the
    registered next version (loaded and verified by the caller), whose root must be the bundle's `next_weights_root`.

    `base_expert` is replayed in place up to the step; pass a copy if you need the base version afterwards.
    """
    if position == len(bundle) - 1 and next_checkpoint is None:
        raise ValueError("judging the last step of a round needs the registered next version (next_checkpoint)")
    replayed = None
    for replayed in replay(base_expert, bundle.steps, upto=position):
        pass
    assert replayed is not None and replayed.step == position
    return step_verdict(bundle, replayed, tolerance, base_expert, next_checkpoint)


def step_verdict(
    bundle: TrainWindowBundle, replayed: ReplayedStep, tolerance: int, replayed_expert: Expert,
    next_checkpoint: Expert | None,
) -> StepVerdict:  # fmt: skip
    """The rule of `judge_step` for a step already replayed: `replayed_expert` holds the parameters after it (used
    for the round's last step only, with `next_checkpoint`, the registered next version; None fails that step)."""
    position = replayed.step
    claimed = bundle.steps[position]
    if not within_tolerance(claimed.outputs, replayed.outputs, tolerance):
        return StepVerdict(position, True, "outputs outside the tolerance")
    if not within_tolerance(claimed.grad_inputs, replayed.grad_inputs, tolerance):
        return StepVerdict(position, True, "input gradients outside the tolerance")
    if position == len(bundle) - 1:
        if next_checkpoint is None:
            return StepVerdict(position, True, "the bundle's next version is not registered")
        if checkpoint_root(next_checkpoint) != bundle.next_weights_root:
            return StepVerdict(position, True, "the bundle's next weights root is not the registered checkpoint")
        if not checkpoint_matches(replayed_expert, next_checkpoint, tolerance):
            return StepVerdict(position, True, "the registered checkpoint is not the replayed parameters")
    return StepVerdict(position, False, "")


def checkpoint_matches(replayed_expert: Expert, checkpoint: Expert, tolerance: int) -> bool:
    """Whether a registered checkpoint equals the replayed final parameters within tolerance, tensor by tensor."""
    for name, param in replayed_expert.state_dict().items():
        if not within_tolerance(checkpoint.state_dict()[name].numpy(), param.numpy(), tolerance):
            return False
    return True


def checkpoint_root(expert: Expert) -> bytes:
    """The weights root a trainer registers for its checkpoint (protocol 7, float expert file)."""
    return float_expert_root(expert)
