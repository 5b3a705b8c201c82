"""Int8Math (Solidity) agrees bit for bit with the numpy reference `bmoe_py.model.int8_ref` (docs/protocol.md 3).

Random cases go through the harness's batch functions, so thousands of vectors and rows cost a few eth_calls.
Run with `-s` to see the gas table of the dot product.
"""
from __future__ import annotations

import numpy as np
import pytest
from brownie import Int8MathHarness, accounts

from bmoe_py.model.int8_ref import MAX_MULTIPLIER, MAX_ROW_LENGTH, MAX_SHIFT, IntLayer, layer_forward, requantize
from helpers import reverts_with

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@pytest.fixture(scope="module")
def harness():
    return Int8MathHarness.deploy({"from": accounts[0]})


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def int8s(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def ref_dot(w: np.ndarray, x: np.ndarray) -> int:
    return int(w.astype(np.int64) @ x.astype(np.int64))


def ref_requantize(acc: list[int], multiplier: int, shift: int, relu: bool) -> list[int]:
    return [int(v) for v in requantize(np.array(acc, dtype=np.int64), multiplier, shift, relu)]


def sol_layer(harness, layer: IntLayer, xs: np.ndarray) -> np.ndarray:
    """Runs `layer` on every row of `xs` on chain; returns int8 [batch, out_dim]."""
    out = harness.layerBatch(
        layer.weight.tobytes(),
        [int(b) for b in layer.bias],
        xs.tobytes(),
        layer.in_dim,
        layer.multiplier,
        layer.shift,
        layer.relu,
    )
    return np.frombuffer(bytes(out), dtype=np.int8).reshape(len(xs), layer.out_dim)


def scale_for(in_dim: int, multiplier: int) -> int:
    """A shift that maps typical accumulators of random rows into the int8 range (so outputs are not all saturated)."""
    typical = 128 * 128 * int(np.sqrt(in_dim)) * multiplier
    return max(0, min(MAX_SHIFT, typical.bit_length() - 7))


# --- dot product -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32, 33, 63, 64, 65, 127, 129, 255, 256, 500, 1000])
def test_dot_matches_reference_for_random_vectors(harness, rng, n):
    count = min(3000, max(8, 40_000 // n))
    w, x = int8s(rng, count, n), int8s(rng, count, n)
    got = harness.dotBatch(w.tobytes(), x.tobytes(), n)
    assert list(got) == [ref_dot(w[k], x[k]) for k in range(count)]


def test_dot_matches_reference_at_maximal_row_length(harness, rng):
    n = MAX_ROW_LENGTH
    w, x = int8s(rng, 16, n), int8s(rng, 16, n)
    assert list(harness.dotBatch(w.tobytes(), x.tobytes(), n)) == [ref_dot(w[k], x[k]) for k in range(16)]


@pytest.mark.parametrize("n", [1, 31, 32, 33, 4095, MAX_ROW_LENGTH])
@pytest.mark.parametrize(("w_value", "x_value"), [(-128, -128), (-128, 127), (127, -128), (127, 127), (-1, 1)])
def test_dot_of_constant_vectors_is_exact(harness, n, w_value, x_value):
    w, x = np.full(n, w_value, np.int8), np.full(n, x_value, np.int8)
    assert harness.dot(w.tobytes(), x.tobytes()) == n * w_value * x_value


def test_dot_of_empty_vectors_is_zero(harness):
    assert harness.dot(b"", b"") == 0


def test_dot_ignores_calldata_after_the_vectors(harness, rng):
    # A partial last word reads past the argument; the bytes there (here: a large second argument) must not count.
    w, x = int8s(rng, 5), np.full(5000, -128, np.int8)
    assert harness.dot(w.tobytes(), x[:5].tobytes()) == ref_dot(w, x[:5])
    assert list(harness.dotBatch(np.tile(w, 3).tobytes(), x[:15].tobytes(), 5)) == [ref_dot(w, x[:5])] * 3


def test_dot_of_unequal_lengths_reverts(harness):
    with reverts_with("LengthMismatch(uint256,uint256)", 3, 2):
        harness.dot(b"\x01\x02\x03", b"\x01\x02")


def test_dot_longer_than_max_row_length_reverts(harness):
    n = MAX_ROW_LENGTH + 1
    with reverts_with("RowTooLong(uint256,uint256)", n, MAX_ROW_LENGTH):
        harness.dot(bytes(n), bytes(n))


# --- requantisation ----------------------------------------------------------------------------------------------


def test_requantize_matches_reference_for_random_accumulators(harness, rng):
    for relu in (False, True):
        for _ in range(6):
            multiplier = int(rng.integers(1, MAX_MULTIPLIER + 1))
            shift = scale_for(int(rng.integers(1, MAX_ROW_LENGTH + 1)), multiplier)
            span = 2**31 + 2**26
            acc = [int(a) for a in rng.integers(-span, span, size=300)] + [int(a) for a in rng.integers(-70_000, 70_000, 300)]
            assert list(harness.requantizeBatch(acc, multiplier, shift, relu)) == ref_requantize(acc, multiplier, shift, relu)


@pytest.mark.parametrize("shift", range(0, 9))
def test_requantize_rounds_half_up_and_floors_negative_values(harness, shift):
    # Small accumulators around every rounding boundary, negative ones included: (acc + 2^(s-1)) >> s floors.
    acc = list(range(-300, 301))
    assert list(harness.requantizeBatch(acc, 1, shift, False)) == ref_requantize(acc, 1, shift, False)


def test_requantize_of_negative_halves_rounds_toward_positive_infinity(harness):
    # -2.5 -> -2, -1.5 -> -1, -0.5 -> 0, -0.75 -> -1: the arithmetic shift floors after adding one half.
    assert [harness.requantize(a, 1, s, False) for a, s in [(-5, 1), (-3, 1), (-1, 1), (-3, 2)]] == [-2, -1, 0, -1]


def test_requantize_saturates_at_int8_bounds(harness):
    acc = [127, 128, 10**6, 2**31 + 2**26, -128, -129, -(10**6), -(2**31 + 2**26)]
    assert list(harness.requantizeBatch(acc, 1, 0, False)) == [127, 127, 127, 127, -128, -128, -128, -128]


def test_requantize_with_relu_clamps_negatives_to_zero(harness):
    acc = [-(2**31), -129, -1, 0, 1, 127, 128]
    assert list(harness.requantizeBatch(acc, 1, 0, True)) == [0, 0, 0, 0, 1, 127, 127]


def test_requantize_with_zero_shift_adds_no_rounding(harness):
    acc = list(range(-200, 201, 7))
    assert list(harness.requantizeBatch(acc, 1, 0, False)) == ref_requantize(acc, 1, 0, False)
    assert list(harness.requantizeBatch(acc, 3, 0, False)) == ref_requantize(acc, 3, 0, False)


@pytest.mark.parametrize("multiplier", [1, 2, MAX_MULTIPLIER - 1, MAX_MULTIPLIER])
def test_requantize_at_shift_62_and_extreme_multipliers(harness, multiplier):
    # At the largest shift and multiplier, acc * M + 2^61 comes close to 2^63 (the reference computes in int64).
    extremes = [INT32_MIN - 2**26, INT32_MIN, -(2**31) // 3, -1, 0, 1, 2**30, INT32_MAX, INT32_MAX + 2**26]
    for relu in (False, True):
        got = harness.requantizeBatch(extremes, multiplier, MAX_SHIFT, relu)
        assert list(got) == ref_requantize(extremes, multiplier, MAX_SHIFT, relu)


def test_requantize_at_the_rounding_boundary_of_shift_62(harness):
    # acc * M = +-2^61 is exactly one half: +0.5 rounds to 1, -0.5 rounds to 0, a hair below -0.5 to -1.
    cases = [(2**31, 1), (-(2**31), 0), (-(2**31) - 1, -1)]
    for acc, expected in cases:
        assert harness.requantize(acc, 2**30, MAX_SHIFT, False) == expected == ref_requantize([acc], 2**30, MAX_SHIFT, False)[0]


# --- whole rows and layers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_dim", "out_dim", "batch"), [(16, 32, 40), (33, 24, 30), (100, 16, 12), (784, 8, 3)])
@pytest.mark.parametrize("relu", [False, True])
def test_layer_matches_reference_for_random_layers(harness, rng, in_dim, out_dim, batch, relu):
    multiplier = int(rng.integers(1, MAX_MULTIPLIER + 1))
    spread = 5461 * int(np.sqrt(in_dim))  # the standard deviation of a random row's dot product
    bias = rng.integers(-spread, spread, size=out_dim, dtype=np.int32)
    layer = IntLayer(int8s(rng, out_dim, in_dim), bias, multiplier, scale_for(in_dim, multiplier), relu)
    xs = int8s(rng, batch, in_dim)
    expected = layer_forward(layer, xs)
    assert (np.abs(expected.astype(int)) < 127).mean() > 0.3  # the case exercises rounding, not only saturation
    assert np.array_equal(sol_layer(harness, layer, xs), expected)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [INT32_MIN, INT32_MAX])
@pytest.mark.parametrize("multiplier", [1, MAX_MULTIPLIER])
def test_row_of_all_minus_128_at_max_length_with_extreme_bias(harness, relu, bias, multiplier):
    w = x = np.full(MAX_ROW_LENGTH, -128, np.int8)
    for shift in (0, 20, 40, MAX_SHIFT):
        acc = bias + MAX_ROW_LENGTH * 128 * 128
        expected = ref_requantize([acc], multiplier, shift, relu)[0]
        assert harness.rowOutput(w.tobytes(), x.tobytes(), bias, multiplier, shift, relu) == expected


@pytest.mark.parametrize("bias", [INT32_MIN, INT32_MAX])
def test_most_negative_row_at_max_length_with_extreme_bias(harness, bias):
    w, x = np.full(MAX_ROW_LENGTH, -128, np.int8), np.full(MAX_ROW_LENGTH, 127, np.int8)
    layer = IntLayer(w[None, :], np.array([bias], np.int32), MAX_MULTIPLIER, MAX_SHIFT, False)
    expected = int(layer_forward(layer, x)[0])
    assert harness.rowOutput(w.tobytes(), x.tobytes(), bias, MAX_MULTIPLIER, MAX_SHIFT, False) == expected


def test_max_length_layer_matches_reference(harness, rng):
    multiplier = int(rng.integers(1, MAX_MULTIPLIER + 1))
    bias = rng.integers(INT32_MIN, INT32_MAX, size=8, dtype=np.int32, endpoint=True)
    layer = IntLayer(int8s(rng, 8, MAX_ROW_LENGTH), bias, multiplier, scale_for(MAX_ROW_LENGTH, multiplier) + 6, True)
    xs = int8s(rng, 2, MAX_ROW_LENGTH)
    assert np.array_equal(sol_layer(harness, layer, xs), layer_forward(layer, xs))


# --- gas ----------------------------------------------------------------------------------------------------------


def test_dot_gas_per_multiply_accumulate_is_small(harness, rng):
    print("\nInt8Math.dot gas (library call only, measured with gasleft()):")
    for n in (64, 256, 1024, 4096):
        gas = harness.dotGas(int8s(rng, n).tobytes(), int8s(rng, n).tobytes())[1]
        print(f"  n={n:5d}: {gas:6d} gas, {gas / n:5.1f} gas per MAC")
        assert gas / n < 30
