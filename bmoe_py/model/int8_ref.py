"""Plain numpy reference of the exact integer expert arithmetic (docs/protocol.md, section 3).

This is the arithmetic that the PyTorch kernel and the Solidity library `Int8Math` must match bit for bit.
Everything is computed in int64, which holds every intermediate value for rows of up to 4096 int8 weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ROW_LENGTH = 4096
MAX_LAYERS = 16
MAX_MULTIPLIER = 2**31 - 1
MAX_SHIFT = 62


@dataclass(frozen=True)
class IntLayer:
    """One exact layer: int8 weights [out, in], int32 bias [out], requantisation (multiplier, shift), ReLU."""

    weight: np.ndarray  # int8, shape (out_dim, in_dim)
    bias: np.ndarray  # int32, shape (out_dim,)
    multiplier: int
    shift: int
    relu: bool

    def __post_init__(self) -> None:
        if self.weight.dtype != np.int8 or self.weight.ndim != 2:
            raise ValueError("weight must be a 2-D int8 array")
        if self.bias.dtype != np.int32 or self.bias.shape != (self.weight.shape[0],):
            raise ValueError("bias must be an int32 array with one entry per output row")
        if not 1 <= self.weight.shape[1] <= MAX_ROW_LENGTH:
            raise ValueError(f"row length {self.weight.shape[1]} outside 1..{MAX_ROW_LENGTH}")
        if not 1 <= self.multiplier <= MAX_MULTIPLIER:
            raise ValueError(f"multiplier {self.multiplier} outside 1..{MAX_MULTIPLIER}")
        if not 0 <= self.shift <= MAX_SHIFT:
            raise ValueError(f"shift {self.shift} outside 0..{MAX_SHIFT}")

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[0])


def requantize(acc: np.ndarray, multiplier: int, shift: int, relu: bool) -> np.ndarray:
    """clamp(relu?((acc * M + 2^(s-1)) >> s), -128, 127) on int64 accumulators; returns int8."""
    acc = np.asarray(acc, dtype=np.int64)
    rounding = np.int64(1 << (shift - 1)) if shift > 0 else np.int64(0)
    q = (acc * np.int64(multiplier) + rounding) >> np.int64(shift)
    if relu:
        q = np.maximum(q, 0)
    return np.clip(q, -128, 127).astype(np.int8)


def layer_forward(layer: IntLayer, x: np.ndarray) -> np.ndarray:
    """int8 input [..., in_dim] -> int8 output [..., out_dim]."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError("input must be int8")
    if x.shape[-1] != layer.in_dim:
        raise ValueError(f"input length {x.shape[-1]} != layer in_dim {layer.in_dim}")
    acc = x.astype(np.int64) @ layer.weight.astype(np.int64).T + layer.bias.astype(np.int64)
    return requantize(acc, layer.multiplier, layer.shift, layer.relu)


def expert_forward(layers: list[IntLayer], x: np.ndarray) -> list[np.ndarray]:
    """Runs the chain of layers; returns every layer's int8 output (the last is the expert's output)."""
    activations = []
    for layer in layers:
        x = layer_forward(layer, x)
        activations.append(x)
    return activations
