"""Canonical safetensors files of experts, gates and checkpoints, and their integrity checks (bmoe_py.model.weights)."""
import hashlib
import json
import struct

import numpy as np
import pytest
import safetensors.numpy
import torch

from bmoe_py.crypto import weights_tree
from bmoe_py.model.exact import ExactMoE
from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.model.weights import (
    EXPERT_FORMAT,
    IntegrityError,
    WeightsError,
    canonical_json,
    decode_safetensors,
    encode_checkpoint,
    encode_exact_expert,
    encode_float_expert,
    encode_gate,
    encode_safetensors,
    float_expert_root,
    gate_root,
    load_checkpoint,
    load_exact_expert,
    load_float_expert,
    load_gate,
    weights_root,
)
from torch_threads import one_torch_thread  # noqa: F401  (autouse: torch on one thread)

CONFIG = MoEConfig(40, 10, patch_size=8, patch_stride=4, d_model=16, d_hidden=32, num_experts=3, num_layers=2)


@pytest.fixture(scope="module")
def exact():
    torch.manual_seed(0)
    model = MoEModel(CONFIG).eval()
    return ExactMoE.quantize(model, torch.randn(200, 40))


@pytest.fixture(scope="module")
def layers(exact):
    return list(exact.experts[1][2].layers)


def flip_byte(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def test_expert_file_round_trips_to_identical_layers_and_bytes(layers):
    data = encode_exact_expert(layers)
    loaded = load_exact_expert(data)
    for a, b in zip(loaded, layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
        assert (a.multiplier, a.shift, a.relu) == (b.multiplier, b.shift, b.relu)
    assert encode_exact_expert(loaded) == data


def test_expert_file_bytes_are_deterministic(exact):
    """Same contents, same bytes: from copies of the arrays, and from a second quantisation of the same model."""
    layers = exact.experts[0][0].layers
    copies = [type(l)(l.weight.copy(), l.bias.copy(), l.multiplier, l.shift, l.relu) for l in layers]
    assert encode_exact_expert(copies) == encode_exact_expert(layers)
    calibration = torch.randn(200, 40, generator=torch.Generator().manual_seed(1))
    first, second = ExactMoE.quantize(exact.model, calibration), ExactMoE.quantize(exact.model, calibration.clone())
    assert encode_exact_expert(first.experts[1][0].layers) == encode_exact_expert(second.experts[1][0].layers)
    assert encode_gate(first.model, first.experts) == encode_gate(second.model, second.experts)


def test_expert_file_is_what_the_safetensors_library_writes_and_reads(layers):
    tensors = {f"layers.{i}.{part}": getattr(l, part) for i, l in enumerate(layers) for part in ("weight", "bias")}
    requant = [{"multiplier": l.multiplier, "shift": l.shift, "relu": l.relu} for l in layers]
    library = safetensors.numpy.save(tensors, metadata={"bmoe": canonical_json({"format": EXPERT_FORMAT, "layers": requant})})
    data = encode_exact_expert(layers)
    assert data == library
    assert all(np.array_equal(safetensors.numpy.load(data)[name], t) for name, t in tensors.items())


def test_expert_file_with_expected_root_loads(layers):
    root = weights_tree(layers).root
    assert weights_root(layers) == root
    load_exact_expert(encode_exact_expert(layers), expected_root=root)
    load_exact_expert(encode_exact_expert(layers), expected_root="0x" + root.hex())


def test_tampered_weight_byte_is_refused_by_the_root_check(layers):
    data = encode_exact_expert(layers)
    tampered = flip_byte(data, len(data) - 1)  # the last weight of the int8 tensors, written last
    load_exact_expert(tampered)  # still a well-formed file ...
    with pytest.raises(IntegrityError, match="weights root of the file is 0x[0-9a-f]+, expected"):
        load_exact_expert(tampered, expected_root=weights_root(layers))  # ... but not the registered weights


def test_tampered_requantisation_passes_the_root_but_not_the_content_check(layers):
    """The weights root covers weights and biases only (the registry records M, s, relu beside it): a changed shift
    keeps the root, and the byte-level check (sha256 or CID) is what refuses it."""
    data = encode_exact_expert(layers)
    old, new = (b'\\"shift\\":%d' % layers[0].shift, b'\\"shift\\":%d' % (layers[0].shift + 1))
    assert len(str(layers[0].shift)) == len(str(layers[0].shift + 1))  # same length keeps the header valid
    tampered = data.replace(old, new, 1)
    assert load_exact_expert(tampered, expected_root=weights_root(layers))[0].shift == layers[0].shift + 1
    with pytest.raises(IntegrityError, match="sha256"):
        load_exact_expert(tampered, expected_root=weights_root(layers), expected_sha256=hashlib.sha256(data).hexdigest())


def test_sha256_mismatch_is_refused(layers):
    data = encode_exact_expert(layers)
    load_exact_expert(data, expected_sha256=hashlib.sha256(data).digest())
    with pytest.raises(IntegrityError, match="sha256 of the file is"):
        load_exact_expert(flip_byte(data, len(data) - 1), expected_sha256=hashlib.sha256(data).digest())


def test_content_check_callback_that_rejects_is_refused(layers):
    data = encode_exact_expert(layers)
    assert load_exact_expert(data, verify=lambda b: b == data)
    with pytest.raises(IntegrityError, match="content check"):
        load_exact_expert(data, verify=lambda b: False)


def test_non_canonical_file_is_refused(layers):
    tensors = {f"layers.{i}.{part}": getattr(l, part) for i, l in enumerate(layers) for part in ("weight", "bias")}
    requant = [{"multiplier": l.multiplier, "shift": l.shift, "relu": l.relu} for l in layers]
    spaced = json.dumps({"format": EXPERT_FORMAT, "layers": requant})  # same contents, JSON with spaces
    data = safetensors.numpy.save(tensors, metadata={"bmoe": spaced})
    with pytest.raises(WeightsError, match="not a canonical"):
        load_exact_expert(data)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t, m: t.pop("layers.1.bias"), "do not match"),
        (lambda t, m: m.update(format="bmoe-gate/1"), "expected a bmoe-expert-int8/1 file"),
        (lambda t, m: m["layers"][0].update(multiplier=0), "multiplier 0 outside"),
        (lambda t, m: m["layers"][1].update(shift=63), "shift 63 outside"),
        (lambda t, m: m["layers"][0].update(relu=1), "requantisation must be"),
        (lambda t, m: t.update({"layers.1.weight": t["layers.1.weight"][:, :-1]}), "takes"),
        (lambda t, m: t.update({"layers.0.bias": t["layers.0.bias"].astype(np.float32)}), "bias must be"),
    ],
)
def test_malformed_expert_files_are_refused_with_the_reason(layers, mutate, message):
    tensors, metadata = decode_safetensors(encode_exact_expert(layers))
    mutate(tensors, metadata)
    with pytest.raises(WeightsError, match=message):
        load_exact_expert(encode_safetensors(tensors, metadata))


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, struct.pack("<Q", 100) + b"{}", struct.pack("<Q", 2) + b"{}"])
def test_garbage_is_refused_as_malformed(data):
    with pytest.raises(WeightsError):
        load_exact_expert(data)


def test_gate_bundle_round_trips_the_float_parts_and_scales(exact):
    data = encode_gate(exact.model, exact.experts)
    gate = load_gate(data, expected_root=gate_root(exact.model, exact.experts))
    assert encode_gate(gate.model, [[gate.exact_expert(l, e, q.layers) for e, q in enumerate(layer)] for l, layer in enumerate(exact.experts)]) == data
    rebuilt = ExactMoE(gate.model, [[gate.exact_expert(l, e, q.layers) for e, q in enumerate(layer)] for l, layer in enumerate(exact.experts)])
    x = torch.randn(20, 40)
    assert torch.equal(rebuilt(x).logits, exact(x).logits)


def test_gate_bundle_experts_are_placeholders_that_fail_loudly(exact):
    gate = load_gate(encode_gate(exact.model, exact.experts))
    assert torch.isnan(gate.model(torch.randn(3, 40)).logits).all()


def test_tampered_gate_bundle_is_refused(exact):
    data = encode_gate(exact.model, exact.experts)
    with pytest.raises(IntegrityError, match="gate root"):
        load_gate(flip_byte(data, len(data) - 2), expected_root=gate_root(exact.model, exact.experts))


def test_float_expert_file_round_trips(exact):
    expert = exact.model.blocks[0].experts[1]
    data = encode_float_expert(expert)
    loaded = load_float_expert(data, expected_root=float_expert_root(expert))
    x = torch.randn(5, CONFIG.d_model)
    assert torch.equal(loaded(x), expert(x)) and encode_float_expert(loaded) == data
    with pytest.raises(IntegrityError):
        load_float_expert(flip_byte(data, len(data) - 1), expected_root=float_expert_root(expert))


def test_checkpoint_round_trips_the_whole_float_model(exact):
    data = encode_checkpoint(exact.model)
    model = load_checkpoint(data)
    assert model.config == CONFIG and encode_checkpoint(model) == data
    x = torch.randn(4, 40)
    assert torch.equal(model(x).logits, exact.model(x).logits)
