"""The PyTorch exact kernel that edge nodes run agrees with the Solidity library that judges fraud proofs.

A small MoE is trained on digits and its experts quantised; real tokens routed to an expert go through the kernel,
and every layer's output for those tokens is recomputed on chain by `Int8Math` (through `Int8MathHarness`).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from brownie import Int8MathHarness, accounts

from bmoe_py.model.data import load_digits
from bmoe_py.model.exact import ExactMoE
from bmoe_py.model.kernel import ExactExpertKernel
from bmoe_py.model.moe import MoEConfig
from bmoe_py.model.quantize import collect_expert_inputs
from bmoe_py.model.train import TrainConfig, train_model
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")),
]
CHUNK = 16  # tokens per eth_call: keeps each call well under anvil's gas limit


@pytest.fixture(scope="module")
def harness():
    return Int8MathHarness.deploy({"from": accounts[0]})


@pytest.fixture(scope="module")
def quantised():
    """(exact model, [layer][expert] int8 test tokens routed to that expert)."""
    data = load_digits()
    config = MoEConfig(data.input_dim, data.num_classes, patch_size=16, patch_stride=8, d_model=32, d_hidden=64, num_experts=4)
    model, _ = train_model(data, config, TrainConfig(epochs=3, batch_size=64, lr=5e-3), device=torch.device("cpu"))
    exact = ExactMoE.quantize(model, data.x_train)
    inputs = collect_expert_inputs(model, data.x_test[:40])
    tokens = [[exact.experts[l][e].quantize_input(t) for e, t in enumerate(layer)] for l, layer in enumerate(inputs)]
    return exact, tokens


def solidity_layer(harness, layer, xs: np.ndarray) -> np.ndarray:
    """Int8Math applied to every token of `xs` [n, in_dim], a chunk of tokens per call."""
    outputs = []
    for start in range(0, len(xs), CHUNK):
        chunk = xs[start : start + CHUNK]
        out = harness.layerBatch(
            layer.weight.tobytes(), [int(b) for b in layer.bias], chunk.tobytes(), layer.in_dim,
            layer.multiplier, layer.shift, layer.relu,
        )  # fmt: skip
        outputs.append(np.frombuffer(bytes(out), dtype=np.int8).reshape(len(chunk), layer.out_dim))
    return np.concatenate(outputs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("expert", [0, 3])
def test_every_layer_of_a_quantised_expert_matches_int8math_on_real_tokens(harness, quantised, device, expert):
    exact, tokens = quantised
    q = exact.experts[0][expert]
    x = tokens[0][expert][:48]
    assert len(x) >= CHUNK, "too few test tokens were routed to this expert to make a meaningful sample"
    activations = ExactExpertKernel(q.layers, device).forward_all(x)
    layer_input = x.numpy()
    for layer, torch_out in zip(q.layers, activations, strict=True):
        on_chain = solidity_layer(harness, layer, layer_input)
        np.testing.assert_array_equal(torch_out.cpu().numpy(), on_chain)
        layer_input = on_chain
    assert len(np.unique(activations[-1].cpu().numpy())) > 10  # real, unsaturated outputs, not a degenerate sample


def test_single_rows_are_what_the_fraud_proof_recomputes(harness, quantised):
    """`rowOutput` (the one dot product a fraud proof costs) gives the kernel's value for sampled (token, layer, row)."""
    exact, tokens = quantised
    q = exact.experts[0][1]
    x = tokens[0][1][:20]
    activations = [x] + ExactExpertKernel(q.layers).forward_all(x)
    rng = np.random.default_rng(0)
    for _ in range(12):
        t, i = int(rng.integers(len(x))), int(rng.integers(len(q.layers)))
        layer = q.layers[i]
        row = int(rng.integers(layer.out_dim))
        got = harness.rowOutput(
            layer.weight[row].tobytes(), activations[i][t].numpy().tobytes(), int(layer.bias[row]),
            layer.multiplier, layer.shift, layer.relu,
        )  # fmt: skip
        assert got == int(activations[i + 1][t, row])
