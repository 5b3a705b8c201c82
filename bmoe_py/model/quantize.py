"""Post-training quantisation of a float expert into the exact integer form (docs/protocol.md 3).

Scheme (symmetric, per tensor, no zero points, so that the on-chain arithmetic stays one multiply and one shift):
- weights: `W ~ s_w * Wq`, `s_w = max|W| / 127`, `Wq` int8 in -127..127;
- activations at every layer boundary: `a ~ s_a * aq`, `aq` int8; `s_a` calibrated on training data (below);
- bias: `bq = round(b / (s_in * s_w))` as int32, so that `acc = Wq @ xq + bq` approximates the output over
  `s_in * s_w`;
- requantisation: `M / 2^s ~ s_in * s_w / s_out`, with M normalised into [2^30, 2^31) for 31 bits of precision.
The expert's input token is quantised with the first boundary's scale and its int8 output read with the last
boundary's scale; those two floats are the only metadata the publisher needs besides the integer layers.

Activation scales are calibrated by a small search over clipping thresholds (fractions of the largest magnitude)
that minimises the squared error of the quantise-dequantise round trip: the plain max lets a few outliers waste
most of the 8 bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .int8_ref import MAX_MULTIPLIER, MAX_SHIFT, IntLayer
from .moe import Expert, MoEModel

__all__ = [
    "QuantizedExpert",
    "calibrate_scale",
    "choose_multiplier",
    "collect_expert_inputs",
    "quantize_expert",
    "quantize_model",
    "quantize_weight",
]

INT8_MAX = 127


@dataclass(frozen=True)
class QuantizedExpert:
    """An exact expert: integer layers plus the float scales of its input and output tokens."""

    layers: tuple[IntLayer, ...]
    input_scale: float
    output_scale: float

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("an expert has at least one layer")
        if not (self.input_scale > 0 and self.output_scale > 0 and math.isfinite(self.input_scale * self.output_scale)):
            raise ValueError("token scales must be positive and finite")

    @property
    def in_dim(self) -> int:
        return self.layers[0].in_dim

    @property
    def out_dim(self) -> int:
        return self.layers[-1].out_dim

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Float tokens -> int8 tokens (round half to even, saturate)."""
        return torch.round(x / self.input_scale).clamp(-128, 127).to(torch.int8)

    def dequantize_output(self, y: torch.Tensor) -> torch.Tensor:
        """int8 output tokens -> float32."""
        return y.to(torch.float32) * self.output_scale


def choose_multiplier(real: float) -> tuple[int, int]:
    """(M, s) with M / 2^s as close to `real` as the limits allow: M in 1..2^31-1, s in 0..62."""
    if not (real > 0 and math.isfinite(real)):
        raise ValueError(f"requantisation scale must be positive and finite, got {real}")
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    shift = 31 - exponent  # puts M = real * 2^shift in [2^30, 2^31)
    shift = min(max(shift, 0), MAX_SHIFT)
    multiplier = round(real * 2.0**shift)
    if multiplier > MAX_MULTIPLIER:  # rounding reached 2^31 (or real >= 2^31 with shift 0)
        if shift > 0:
            multiplier, shift = round(real * 2.0 ** (shift - 1)), shift - 1
        multiplier = min(multiplier, MAX_MULTIPLIER)
    return max(multiplier, 1), shift


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8: (Wq in -127..127, scale) with W ~ scale * Wq."""
    amax = float(np.abs(weight).max()) if weight.size else 0.0
    scale = amax / INT8_MAX if amax > 0 else 1.0
    return np.clip(np.round(weight / scale), -INT8_MAX, INT8_MAX).astype(np.int8), scale


def calibrate_scale(samples: torch.Tensor, steps: int = 48, max_values: int = 1 << 18) -> float:
    """Scale for int8 codes of `samples`: clip threshold t = 2^(-i/8) * max|x|, i < steps (down to 1/64 of the
    largest magnitude), minimising E[(x - deq(q(x)))^2] over at most `max_values` evenly spaced samples.

    The scale is rounded to float32, the precision in which the gate bundle stores it, so that the requantisation
    derived from it here is the one that a publisher loading the bundle gets.
    """
    values = samples.detach().reshape(-1)
    if values.numel() > max_values:
        values = values[:: -(-values.numel() // max_values)]
    values = values.to(torch.float64)
    amax = float(values.abs().max()) if values.numel() else 0.0
    if amax == 0.0 or not math.isfinite(amax):
        return 1.0
    best_scale, best_err = amax / INT8_MAX, math.inf
    for i in range(steps):
        scale = amax * 2.0 ** (-i / 8) / INT8_MAX
        err = float(((torch.round(values / scale).clamp(-128, 127) * scale - values) ** 2).mean())
        if err < best_err:
            best_scale, best_err = scale, err
    return float(np.float32(best_scale))


def _linear_chain(expert: nn.Module) -> list[tuple[nn.Linear, bool]]:
    """The expert as (Linear, ReLU after it) pairs."""
    if isinstance(expert, Expert):
        return [(expert.fc1, True), (expert.fc2, False)]
    raise TypeError(f"do not know how to quantise {type(expert).__name__}")


@torch.no_grad()
def quantize_expert(expert: nn.Module, calibration_inputs: torch.Tensor) -> QuantizedExpert:
    """Quantises a float expert; `calibration_inputs` [n, d_model] are tokens the expert sees in training."""
    x = calibration_inputs.to(torch.float32)
    scale_in = input_scale = calibrate_scale(x)
    layers = []
    for linear, relu in _linear_chain(expert):
        x = linear(x.to(linear.weight.device))
        if relu:
            x = torch.relu(x)
        scale_out = calibrate_scale(x)
        weight, scale_w = quantize_weight(linear.weight.detach().cpu().numpy().astype(np.float64))
        bias = linear.bias.detach().cpu().numpy().astype(np.float64) / (scale_in * scale_w)
        bias = np.clip(np.round(bias), -(2**31), 2**31 - 1).astype(np.int32)
        multiplier, shift = choose_multiplier(scale_in * scale_w / scale_out)
        layers.append(IntLayer(weight, bias, multiplier, shift, relu))
        scale_in = scale_out
    return QuantizedExpert(tuple(layers), input_scale, scale_in)


@torch.no_grad()
def collect_expert_inputs(
    model: MoEModel, x: torch.Tensor, batch_size: int = 4096, max_tokens: int = 50_000
) -> list[list[torch.Tensor]]:
    """[layer][expert] -> the float tokens routed to that expert when the float model runs on `x` (capped)."""
    config = model.config
    seen: list[list[list[torch.Tensor]]] = [[[] for _ in range(config.num_experts)] for _ in range(config.num_layers)]

    def recording_runner(layer: int, batches: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        for e, tokens in batches.items():
            seen[layer][e].append(tokens)
        return model.blocks[layer].run_local(batches)

    was_training = model.training
    model.eval()
    for start in range(0, len(x), batch_size):
        model(x[start : start + batch_size].to(model.device), recording_runner)
    model.train(was_training)
    empty = torch.empty(0, config.d_model, device=model.device)
    return [[torch.cat(chunks)[:max_tokens] if chunks else empty for chunks in layer] for layer in seen]


def quantize_model(model: MoEModel, calibration_x: torch.Tensor) -> list[list[QuantizedExpert]]:
    """Quantises every expert of `model` ([layer][expert]), calibrated on the float model's tokens for `calibration_x`.

    An expert that no calibration token reaches is calibrated on all of its layer's tokens.
    """
    inputs = collect_expert_inputs(model, calibration_x)
    result = []
    for layer, block in enumerate(model.blocks):
        everything = torch.cat(inputs[layer])
        result.append(
            [
                quantize_expert(expert, inputs[layer][e] if len(inputs[layer][e]) else everything)
                for e, expert in enumerate(block.experts)
            ]
        )
    return result
