"""Quantisation produces valid exact layers that approximate the float expert (bmoe_py.model.quantize)."""
import math

import numpy as np
import pytest
import torch

from bmoe_py.model import int8_ref
from bmoe_py.model.int8_ref import MAX_MULTIPLIER, MAX_SHIFT
from bmoe_py.model.moe import Expert
from bmoe_py.model.quantize import calibrate_scale, choose_multiplier, quantize_expert, quantize_weight
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread)


@pytest.mark.parametrize("real", [1e-9, 3.7e-5, 0.001234, 0.5, 0.999999, 1.0, 3.0, 12345.678])
def test_multiplier_and_shift_are_in_range_and_accurate_to_31_bits(real):
    m, s = choose_multiplier(real)
    assert 1 <= m <= MAX_MULTIPLIER and 0 <= s <= MAX_SHIFT
    assert 2**30 <= m  # full precision whenever the shift range allows it
    assert abs(m / 2**s - real) / real < 2**-30


def test_multiplier_saturates_at_the_range_limits():
    assert choose_multiplier(2.0**40) == (MAX_MULTIPLIER, 0)
    m, s = choose_multiplier(2.0**-80)
    assert (m, s) == (1, MAX_SHIFT)


def test_multiplier_that_rounds_up_to_two_to_the_31_is_renormalised():
    m, s = choose_multiplier(1 - 2**-40)  # real * 2^31 rounds to 2^31, one above the limit
    assert (m, s) == (2**30, 30)


@pytest.mark.parametrize("real", [0.0, -1.0, math.inf, math.nan])
def test_multiplier_of_a_non_positive_or_non_finite_scale_is_rejected(real):
    with pytest.raises(ValueError):
        choose_multiplier(real)


def test_weights_are_symmetric_int8_and_round_trip_within_half_a_step():
    w = np.random.default_rng(0).normal(size=(32, 16))
    q, scale = quantize_weight(w)
    assert q.dtype == np.int8 and q.min() >= -127 and np.abs(q).max() == 127
    assert np.abs(q * scale - w).max() <= scale / 2 + 1e-12


def round_trip_error(x, scale):
    return float(((torch.round(x / scale).clamp(-128, 127) * scale - x) ** 2).mean())


def test_calibrated_scale_clips_heavy_tails_when_that_lowers_the_error():
    torch.manual_seed(0)
    x = torch.distributions.StudentT(3.0).sample((100_000,))
    scale, max_scale = calibrate_scale(x), float(x.abs().max()) / 127
    assert scale < 0.75 * max_scale
    assert round_trip_error(x, scale) < 0.75 * round_trip_error(x, max_scale)
    assert scale == float(np.float32(scale))  # stored as float32 in the gate bundle


def test_calibrated_scale_of_zeros_is_one():
    assert calibrate_scale(torch.zeros(10)) == 1.0


@pytest.fixture(scope="module")
def expert_and_inputs():
    torch.manual_seed(0)
    expert = Expert(24, 48)
    return expert, torch.randn(2000, 24)


def test_quantized_expert_has_valid_chained_layers(expert_and_inputs):
    expert, x = expert_and_inputs
    q = quantize_expert(expert, x)
    assert [(l.in_dim, l.out_dim, l.relu) for l in q.layers] == [(24, 48, True), (48, 24, False)]
    for layer in q.layers:
        assert layer.weight.dtype == np.int8 and layer.bias.dtype == np.int32
        assert 1 <= layer.multiplier <= MAX_MULTIPLIER and 0 <= layer.shift <= MAX_SHIFT
    assert q.input_scale > 0 and q.output_scale > 0


def test_quantized_expert_approximates_the_float_expert(expert_and_inputs):
    expert, x = expert_and_inputs
    q = quantize_expert(expert, x)
    xq = q.quantize_input(x[:500])
    y = q.dequantize_output(torch.from_numpy(int8_ref.expert_forward(list(q.layers), xq.numpy())[-1]))
    with torch.no_grad():
        want = expert(x[:500])
    relative = ((y - want).norm() / want.norm()).item()
    assert relative < 0.05


def test_token_quantisation_rounds_and_saturates():
    torch.manual_seed(0)
    q = quantize_expert(Expert(4, 8), torch.randn(100, 4))
    s = q.input_scale
    x = torch.tensor([[0.0, 1.4 * s, -2.6 * s, 1000 * s]])
    assert q.quantize_input(x).tolist() == [[0, 1, -3, 127]]
    y = q.dequantize_output(torch.tensor([-128, 5], dtype=torch.int8))
    assert y.dtype == torch.float32 and y.tolist() == pytest.approx([-128 * q.output_scale, 5 * q.output_scale])
