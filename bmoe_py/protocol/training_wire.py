"""Messages of the edge node's training API (docs/protocol.md 11.2): `/v1/train/forward` and `/v1/train/backward`
travel as frames (protocol 8, `encode_frame`), `/v1/train/finish` as JSON.

Every message names the step it belongs to, `(task, model, expert, base version, round, step)`, so that a node
can refuse a step that is not the next one of its round (409) before it does any work.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .wire import MAX_FRAME_BYTES, MAX_TOKENS_PER_REQUEST, FrameError, _hex32, _uint, decode_frame, encode_frame

__all__ = [
    "StepStats",
    "TrainBackwardRequest",
    "TrainBackwardResponse",
    "TrainFinishRequest",
    "TrainFinishResponse",
    "TrainForwardRequest",
    "TrainForwardResponse",
]

_IDS = ("task_id", "model_id", "expert_index", "expert_version", "round", "step")
_BITS = {"task_id": 256, "model_id": 256, "expert_index": 32, "expert_version": 32, "round": 64, "step": 64}


def _ids(header: dict[str, Any], fields: tuple[str, ...] = _IDS) -> list[int]:
    return [_uint(header, name, _BITS[name]) for name in fields]


def _only_tensor(tensors: dict[str, np.ndarray], name: str, what: str) -> np.ndarray:
    """The single float32 matrix `name` of a frame, or FrameError."""
    array = tensors.get(name)
    if array is None or len(tensors) != 1:
        raise FrameError(f'a {what} carries exactly one tensor, "{name}"; got {sorted(tensors)}')
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[0] == 0:
        raise FrameError(f"{name} must be a non-empty float32 [n, d] matrix, got {array.dtype} {list(array.shape)}")
    if array.shape[0] > MAX_TOKENS_PER_REQUEST:
        raise FrameError(f"{array.shape[0]} tokens exceed the limit of {MAX_TOKENS_PER_REQUEST} per request")
    return array


def _node(header: dict[str, Any]) -> str:
    node = header.get("node")
    if not isinstance(node, str) or not node.startswith("0x") or len(node) != 42:
        raise FrameError("a training response names its node (0x address)")
    return node


@dataclass(frozen=True)
class TrainForwardRequest:
    """POST /v1/train/forward: y = expert(tokens) at step `step` of round `round`, from base version `expert_version`."""

    task_id: int
    model_id: int
    expert_index: int
    expert_version: int
    round: int
    step: int
    tokens: np.ndarray  # float32 [n, in]

    def encode(self) -> bytes:
        return encode_frame({k: getattr(self, k) for k in _IDS}, {"tokens": self.tokens})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> TrainForwardRequest:
        header, tensors = decode_frame(data, max_bytes)
        return cls(*_ids(header), _only_tensor(tensors, "tokens", "training forward request"))


@dataclass(frozen=True)
class TrainForwardResponse:
    """The outputs the node returned for a training forward (recorded in its bundle as returned)."""

    task_id: int
    node: str
    model_id: int
    expert_index: int
    expert_version: int
    round: int
    step: int
    outputs: np.ndarray  # float32 [n, out]

    def encode(self) -> bytes:
        return encode_frame({"node": self.node, **{k: getattr(self, k) for k in _IDS}}, {"outputs": self.outputs})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> TrainForwardResponse:
        header, tensors = decode_frame(data, max_bytes)
        task, model, expert, version, round_, step = _ids(header)
        outputs = _only_tensor(tensors, "outputs", "training forward response")
        return cls(task, _node(header), model, expert, version, round_, step, outputs)


@dataclass(frozen=True)
class TrainBackwardRequest:
    """POST /v1/train/backward: the gradient of the loss w.r.t. the step's outputs, and the step's learning rate.

    The node backpropagates, applies the protocol's Adam step at `lr` (as float32) and answers grad_inputs.
    """

    task_id: int
    model_id: int
    expert_index: int
    expert_version: int
    round: int
    step: int
    lr: float
    grad_outputs: np.ndarray  # float32 [n, out]

    def encode(self) -> bytes:
        header = {**{k: getattr(self, k) for k in _IDS}, "lr": float(self.lr)}
        return encode_frame(header, {"grad_outputs": self.grad_outputs})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> TrainBackwardRequest:
        header, tensors = decode_frame(data, max_bytes)
        lr = header.get("lr")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr < 0:
            raise FrameError("lr must be a finite non-negative number")
        grad = _only_tensor(tensors, "grad_outputs", "training backward request")
        return cls(*_ids(header), float(lr), grad)


@dataclass(frozen=True)
class StepStats:
    """What a trainer reports about a step (screening compares them across trainers; docs/protocol.md 11.2).

    grad_norm: L2 norm of all parameter gradients of the step; update_norm: L2 norm of p_{s+1} - p_s;
    param_norm: L2 norm of p_{s+1}; output_norm: Frobenius norm of the outputs returned by the step's forward.
    """

    grad_norm: float
    update_norm: float
    param_norm: float
    output_norm: float

    @classmethod
    def from_json(cls, value: Any) -> StepStats:
        try:
            return cls(*(float(value[k]) for k in ("grad_norm", "update_norm", "param_norm", "output_norm")))
        except (TypeError, KeyError, ValueError):
            raise FrameError("stats must hold grad_norm, update_norm, param_norm and output_norm") from None


@dataclass(frozen=True)
class TrainBackwardResponse:
    task_id: int
    node: str
    model_id: int
    expert_index: int
    expert_version: int
    round: int
    step: int
    stats: StepStats
    grad_inputs: np.ndarray  # float32 [n, in]

    def encode(self) -> bytes:
        header = {"node": self.node, **{k: getattr(self, k) for k in _IDS}, "stats": asdict(self.stats)}
        return encode_frame(header, {"grad_inputs": self.grad_inputs})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> TrainBackwardResponse:
        header, tensors = decode_frame(data, max_bytes)
        task, model, expert, version, round_, step = _ids(header)
        grad = _only_tensor(tensors, "grad_inputs", "training backward response")
        return cls(task, _node(header), model, expert, version, round_, step, StepStats.from_json(header.get("stats")), grad)


_FINISH_IDS = ("task_id", "model_id", "expert_index", "expert_version", "round")


@dataclass(frozen=True)
class TrainFinishRequest:
    """POST /v1/train/finish (JSON): end round `round`; the node pins, publishes and commits its checkpoint."""

    task_id: int
    model_id: int
    expert_index: int
    expert_version: int
    round: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: Any) -> TrainFinishRequest:
        if not isinstance(body, dict):
            raise FrameError("the finish request is a JSON object")
        return cls(*_ids(body, _FINISH_IDS))


@dataclass(frozen=True)
class TrainFinishResponse:
    """The outcome of a round: the next version registered on chain and the commitment of the round's steps."""

    round: int
    steps: int
    tokens: int
    next_version: int
    weights_cid: str
    weights_root: bytes
    bundle_cid: str
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "weights_root": "0x" + self.weights_root.hex(), "root": "0x" + self.root.hex()}

    @classmethod
    def from_json(cls, body: Any) -> TrainFinishResponse:
        if not isinstance(body, dict):
            raise FrameError("the finish response is a JSON object")
        try:
            return cls(
                _uint(body, "round", 64), _uint(body, "steps", 64), _uint(body, "tokens", 64),
                _uint(body, "next_version", 32), str(body["weights_cid"]), _hex32(body.get("weights_root"), "weights_root"),
                str(body["bundle_cid"]), _hex32(body.get("root"), "root"),
            )  # fmt: skip
        except KeyError as exc:
            raise FrameError(f"the finish response lacks {exc}") from None
