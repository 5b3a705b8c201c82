"""The coordinator's two-phase backward (bmoe_py/training/coordinator.two_phase_step) against plain autograd."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.training.coordinator import expert_load, imbalance, two_phase_step
from bmoe_py.training.records import forward as expert_forward
from bmoe_py.training.records import make_optimizer, train_step


def _model() -> MoEModel:
    torch.manual_seed(0)
    return MoEModel(MoEConfig(input_dim=40, num_classes=10, patch_size=8, patch_stride=4, d_model=16, d_hidden=32, num_experts=4, k=2))


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(12, 40, generator=g), torch.randint(0, 10, (12,), generator=g)


def _local_grads(model: MoEModel) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if ".experts." not in n and p.grad is not None}


def test_two_phase_gradients_equal_end_to_end_autograd():
    x, y = _batch()
    reference = _model()
    out = reference(x)
    (F.cross_entropy(out.logits, y) + 0.01 * out.aux_loss).backward()
    expected = _local_grads(reference)

    coordinated = _model()
    experts = {e: copy.deepcopy(coordinated.blocks[0].experts[e]) for e in range(4)}
    optimizers = {e: make_optimizer(experts[e]) for e in experts}
    inputs: dict[int, np.ndarray] = {}

    def forward(batches):
        inputs.update(batches)
        return {e: expert_forward(experts[e], t) for e, t in batches.items()}

    def backward(grads):  # lr 0: the trainers' step leaves the experts as they were
        return {e: train_step(experts[e], optimizers[e], inputs[e], g, 0.0) for e, g in grads.items()}

    outcome = two_phase_step(coordinated, x, y, 0.01, forward, backward)
    got = _local_grads(coordinated)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    assert outcome.sample_losses.shape == (12,) and outcome.top1.shape == (12 * 9,)


def test_without_the_second_phase_the_input_projection_gradient_is_incomplete():
    x, y = _batch()
    reference = _model()
    out = reference(x)
    (F.cross_entropy(out.logits, y) + 0.01 * out.aux_loss).backward()
    coordinated = _model()
    experts = {e: coordinated.blocks[0].experts[e] for e in range(4)}
    two_phase_step(
        coordinated, x, y, 0.01, lambda b: {e: expert_forward(experts[e], t) for e, t in b.items()},
        lambda grads: {e: np.zeros((g.shape[0], 16), np.float32) for e, g in grads.items()},  # no input gradients
    )  # fmt: skip
    assert not torch.allclose(coordinated.embed.weight.grad, reference.embed.weight.grad, rtol=1e-4, atol=1e-6)


def test_expert_load_and_imbalance():
    load = expert_load(torch.tensor([[0, 1], [0, 2], [0, 1]]), 4)
    assert load == [0.5, 2 / 6, 1 / 6, 0.0]
    max_mean, cv = imbalance(load)
    assert max_mean == pytest.approx(2.0) and cv > 0
    assert imbalance([0.25] * 4) == (1.0, 0.0)
