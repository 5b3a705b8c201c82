"""The PyTorch exact kernel equals the numpy reference `int8_ref` bit for bit (docs/protocol.md 3), on every device."""
import numpy as np
import pytest
import torch

from bmoe_py.model import int8_ref
from bmoe_py.model.int8_ref import MAX_MULTIPLIER, MAX_ROW_LENGTH, MAX_SHIFT, IntLayer
from bmoe_py.model.kernel import ExactExpertKernel, requantize
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread)

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
    ),
]
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def random_layer(rng, in_dim, out_dim, *, multiplier=None, shift=None, relu=None, bias_bits=31):
    weight = rng.integers(-128, 128, size=(out_dim, in_dim), dtype=np.int8)
    bias = rng.integers(-(2**bias_bits), 2**bias_bits, size=out_dim, dtype=np.int64).clip(INT32_MIN, INT32_MAX)
    return IntLayer(
        weight,
        bias.astype(np.int32),
        int(rng.integers(1, MAX_MULTIPLIER + 1)) if multiplier is None else multiplier,
        int(rng.integers(0, MAX_SHIFT + 1)) if shift is None else shift,
        bool(rng.integers(2)) if relu is None else relu,
    )


def assert_kernel_matches_reference(layers, x, device):
    kernel = ExactExpertKernel(layers, device)
    got = [a.cpu().numpy() for a in kernel.forward_all(torch.from_numpy(x))]
    want = int8_ref.expert_forward(layers, x)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.int8
        np.testing.assert_array_equal(g, w)
    return want


@pytest.mark.parametrize("device", DEVICES)
def test_random_layers_match_reference_on_thousands_of_vectors(device):
    rng = np.random.default_rng(1)
    vectors = 0
    for _ in range(150):
        in_dim, out_dim = int(rng.integers(1, 200)), int(rng.integers(1, 40))
        # shifts near the magnitude of acc*M keep outputs mostly unsaturated, so every code path is exercised
        shift = int(rng.integers(20, 45)) if rng.random() < 0.8 else None
        layer = random_layer(rng, in_dim, out_dim, shift=shift, bias_bits=int(rng.integers(0, 32)))
        x = rng.integers(-128, 128, size=(int(rng.integers(1, 40)), in_dim), dtype=np.int8)
        assert_kernel_matches_reference([layer], x, device)
        vectors += len(x)
    assert vectors > 2000


@pytest.mark.parametrize("device", DEVICES)
def test_outputs_cover_saturation_relu_and_the_middle_of_the_range(device):
    rng = np.random.default_rng(2)
    layer = random_layer(rng, 64, 256, multiplier=2**30, shift=45, relu=False, bias_bits=24)
    x = rng.integers(-128, 128, size=(64, 64), dtype=np.int8)
    (y,) = assert_kernel_matches_reference([layer], x, device)
    assert (y == 127).any() and (y == -128).any() and ((y > -128) & (y < 127)).any()
    relu_layer = IntLayer(layer.weight, layer.bias, layer.multiplier, layer.shift, True)
    (y,) = assert_kernel_matches_reference([relu_layer], x, device)
    assert (y == 0).any() and (y == 127).any() and y.min() == 0


@pytest.mark.parametrize("device", DEVICES)
def test_longest_row_with_extreme_values_matches_reference(device):
    """Row length 4096 with all-(-128) weights and inputs: |acc| reaches 2^26 + 2^31, acc*M nearly 2^63."""
    ones = np.full((4, MAX_ROW_LENGTH), -128, dtype=np.int8)
    weight = np.concatenate([ones, -ones.clip(-127, 127)])  # rows give +2^26 and about -2^26 with x = -128
    for bias, multiplier, shift in [
        (INT32_MAX, MAX_MULTIPLIER, MAX_SHIFT),
        (INT32_MIN, MAX_MULTIPLIER, MAX_SHIFT),
        (INT32_MAX, MAX_MULTIPLIER, 0),
        (0, 1, 0),
        (-5, 1, 27),
    ]:
        layer = IntLayer(weight, np.full(len(weight), bias, dtype=np.int32), multiplier, shift, False)
        x = np.stack([np.full(MAX_ROW_LENGTH, -128, np.int8), np.full(MAX_ROW_LENGTH, 127, np.int8), np.zeros(MAX_ROW_LENGTH, np.int8)])
        assert_kernel_matches_reference([layer], x, device)


@pytest.mark.parametrize("device", DEVICES)
def test_random_rows_of_length_4096_match_reference(device):
    rng = np.random.default_rng(3)
    layer = random_layer(rng, MAX_ROW_LENGTH, 32, shift=40)
    x = rng.integers(-128, 128, size=(64, MAX_ROW_LENGTH), dtype=np.int8)
    assert_kernel_matches_reference([layer], x, device)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_shift_adds_no_rounding_and_saturates(device):
    layer = IntLayer(np.array([[1], [-1]], np.int8), np.zeros(2, np.int32), 1, 0, False)
    x = np.array([[0], [5], [-128], [127], [-1]], np.int8)
    (y,) = assert_kernel_matches_reference([layer], x, device)
    np.testing.assert_array_equal(y, [[0, 0], [5, -5], [-128, 127], [127, -127], [-1, 1]])


@pytest.mark.parametrize("device", DEVICES)
def test_negative_accumulators_round_half_up_by_arithmetic_shift(device):
    """(acc + 2^(s-1)) >> s floors: -3/2 -> -1, -5/2 -> -2, -1/4 -> 0, 3/2 -> 2."""
    acc = torch.tensor([-3, -5, -1, 3, -2**40], dtype=torch.int64, device=device)
    np.testing.assert_array_equal(requantize(acc, 1, 1, False).cpu().numpy(), [-1, -2, 0, 2, -128])
    np.testing.assert_array_equal(requantize(acc, 1, 2, False).cpu().numpy(), [-1, -1, 0, 1, -128])
    np.testing.assert_array_equal(
        requantize(acc, 1, 1, False).cpu().numpy(), int8_ref.requantize(acc.cpu().numpy(), 1, 1, False)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_multi_layer_chain_matches_reference_for_every_activation(device):
    rng = np.random.default_rng(4)
    dims = [48, 96, 32, 16]
    layers = [random_layer(rng, a, b, shift=int(rng.integers(18, 24)), bias_bits=12) for a, b in zip(dims, dims[1:])]
    x = rng.integers(-128, 128, size=(500, dims[0]), dtype=np.int8)
    assert_kernel_matches_reference(layers, x, device)


def test_empty_batch_gives_empty_output():
    layer = random_layer(np.random.default_rng(5), 8, 3)
    y = ExactExpertKernel([layer])(torch.empty(0, 8, dtype=torch.int8))
    assert y.shape == (0, 3) and y.dtype == torch.int8


def test_float_tokens_are_rejected():
    kernel = ExactExpertKernel([random_layer(np.random.default_rng(6), 8, 3)])
    with pytest.raises(TypeError, match="int8"):
        kernel(torch.zeros(2, 8))


def test_layers_that_do_not_chain_are_rejected():
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match="in_dim"):
        ExactExpertKernel([random_layer(rng, 8, 4), random_layer(rng, 5, 2)])
