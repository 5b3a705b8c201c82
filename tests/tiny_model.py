"""The tiniest publishable exact model, for tests that need a model on chain and not what it learned."""
from __future__ import annotations

import torch

from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.model.quantize import quantize_model
from bmoe_py.publisher.prepare import model_files
from bmoe_py.publisher.publish import ModelFiles


def small_model(seed: int = 0, experts: int = 3) -> ModelFiles:
    """The files of a tiny untrained MoE (8-wide tokens, experts 8->16->8) quantised on random tokens."""
    torch.manual_seed(seed)
    model = MoEModel(MoEConfig(input_dim=8, num_classes=3, d_model=8, d_hidden=16, num_experts=experts, k=1))
    return model_files(model, quantize_model(model, torch.randn(256, 8)))
