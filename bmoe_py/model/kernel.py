"""The exact int8 expert kernel in PyTorch (docs/protocol.md 3), bit for bit equal to `int8_ref` on CPU and CUDA.

The dot products run as a float64 matmul. That is exact, not an approximation: every product W*x has magnitude
at most 128*128 = 2^14, so every partial sum of a row of at most 4096 terms stays below 2^26, far inside the 2^53
integers that float64 represents exactly, whatever order the BLAS library sums in. (CUDA has no int64 matmul, and
float32/TF32 would not be exact.) The bias, requantisation, ReLU and clamp then run in int64 on the device, where
`acc * M` (|acc| < 2^32, M < 2^31) and the rounding term fit.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .int8_ref import IntLayer

__all__ = ["ExactExpertKernel", "requantize"]


def requantize(acc: torch.Tensor, multiplier: int, shift: int, relu: bool) -> torch.Tensor:
    """clamp(relu?((acc * M + 2^(s-1)) >> s), -128, 127) on int64 accumulators; returns int8."""
    q = acc * multiplier
    if shift > 0:
        q = (q + (1 << (shift - 1))) >> shift  # `>>` on signed integers is an arithmetic shift (floor)
    if relu:
        q = q.clamp_min(0)
    return q.clamp(-128, 127).to(torch.int8)


class ExactExpertKernel:
    """An exact expert's layers, resident on `device`; maps int8 tokens [n, in_dim] to int8 [n, out_dim]."""

    def __init__(self, layers: Sequence[IntLayer], device: torch.device | str = "cpu") -> None:
        if not layers:
            raise ValueError("an expert has at least one layer")
        for i in range(1, len(layers)):
            if layers[i].in_dim != layers[i - 1].out_dim:
                raise ValueError(f"layer {i} in_dim {layers[i].in_dim} != layer {i - 1} out_dim {layers[i - 1].out_dim}")
        self.device = torch.device(device)
        self.layers = list(layers)
        # W^T as float64, ready for x @ W^T; the bias stays integer and is added after the exact conversion.
        self._weights_t = [torch.from_numpy(l.weight.T.astype(np.float64)).to(self.device) for l in layers]
        self._biases = [torch.from_numpy(l.bias.astype(np.int64)).to(self.device) for l in layers]

    @property
    def in_dim(self) -> int:
        return self.layers[0].in_dim

    @property
    def out_dim(self) -> int:
        return self.layers[-1].out_dim

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's int8 output for int8 tokens `x` [n, in_dim] (what a node reveals in a dispute)."""
        if x.dtype != torch.int8:
            raise TypeError(f"exact experts take int8 tokens, not {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"expected tokens of shape [n, {self.in_dim}], got {list(x.shape)}")
        x = x.to(self.device)
        activations = []
        for layer, weight_t, bias in zip(self.layers, self._weights_t, self._biases):
            acc = (x.to(torch.float64) @ weight_t).to(torch.int64) + bias  # exact, see module docstring
            x = requantize(acc, layer.multiplier, layer.shift, layer.relu)
            activations.append(x)
        return activations

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The expert's int8 output for int8 tokens `x` [n, in_dim]."""
        return self.forward_all(x)[-1]
