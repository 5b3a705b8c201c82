"""An MoE whose experts run in exact int8 mode while the gate, norms, residuals and head stay float.

This is what a publisher with exact experts computes: float tokens are quantised at the expert boundary, the expert
runs as integers (locally here, on an edge node in the real system), and its int8 output is read back with the
output scale. Comparing `ExactMoE.accuracy` with the float model's accuracy measures the cost of exactness.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .kernel import ExactExpertKernel
from .moe import MoEModel, ModelOutput
from .quantize import QuantizedExpert, quantize_model
from .train import accuracy

__all__ = ["ExactMoE"]


class ExactMoE:
    """A float `MoEModel` with its experts replaced by exact experts `experts[layer][expert]`."""

    def __init__(self, model: MoEModel, experts: Sequence[Sequence[QuantizedExpert]]) -> None:
        config = model.config
        if len(experts) != config.num_layers or any(len(layer) != config.num_experts for layer in experts):
            raise ValueError(f"need {config.num_layers} layers of {config.num_experts} exact experts")
        self.model = model
        self.experts = [list(layer) for layer in experts]
        self.kernels = [[ExactExpertKernel(q.layers, model.device) for q in layer] for layer in self.experts]

    @classmethod
    def quantize(cls, model: MoEModel, calibration_x: torch.Tensor) -> ExactMoE:
        """Quantises every expert of `model`, calibrating activation scales on `calibration_x` (training inputs)."""
        return cls(model, quantize_model(model, calibration_x))

    def run_experts(self, layer: int, batches: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """`ExpertRunner`: quantise each expert's tokens, run the exact kernel, dequantise."""
        outputs = {}
        for e, tokens in batches.items():
            q = self.experts[layer][e]
            outputs[e] = q.dequantize_output(self.kernels[layer][e](q.quantize_input(tokens)))
        return outputs

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> ModelOutput:
        return self.model(x.to(self.model.device), self.run_experts)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
        return accuracy(self.model, x, y, self.run_experts, batch_size)
