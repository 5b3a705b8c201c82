"""Canonical safetensors files of a model's parts (docs/protocol.md 7) and their roots (2.2, 2.3).

- **expert file** (`bmoe-expert-int8/1`): `layers.<i>.weight` int8 [out, in], `layers.<i>.bias` int32 [out]; the
  requantisation `{multiplier, shift, relu}` of each layer in the metadata. Root: the weights tree of 2.2.
- **float expert file** (`bmoe-expert-f32/1`): `layers.<i>.weight` / `layers.<i>.bias` float32; `{relu}` per layer in
  the metadata. Root: the tensor-row tree of 2.3, as for the gate.
- **gate bundle** (`bmoe-gate/1`): every float tensor of the model but the experts, plus the experts' token scales
  (`expert_scales.input` / `expert_scales.output`, float32 [num_layers, num_experts]) when they are exact; the
  model configuration and `expert_count` in the metadata. Root: 2.3.
- **checkpoint** (`bmoe-checkpoint/1`): the whole float model (training output); no root, it is never on chain.

"Canonical" means that equal contents give equal bytes, hence equal CIDs. The writer is spelled out here rather
than left to a library version: the layout is the one `safetensors` 0.4+ writes (tensors sorted by dtype, widest
first, then by name; header JSON without spaces, padded with spaces to a multiple of 8 bytes) with one metadata entry
`bmoe` holding canonical JSON (safetensors writes a metadata map of several entries in hash order). The reader
accepts only bytes that this writer reproduces exactly, so two different files can never decode to the same model.

Every `load_*` function can check the bytes before parsing (`expected_sha256`, or `verify`, e.g. a CID check) and
the root after parsing (`expected_root`), and raises `IntegrityError` on a mismatch.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from eth_abi import encode as abi_encode

from ..crypto.leaves import weights_tree
from ..crypto.merkle import MerkleTree, double_hash
from .int8_ref import MAX_LAYERS, IntLayer
from .moe import Expert, MoEConfig, MoEModel
from .quantize import QuantizedExpert

__all__ = [
    "CHECKPOINT_FORMAT",
    "EXPERT_FORMAT",
    "FLOAT_EXPERT_FORMAT",
    "GATE_FORMAT",
    "Gate",
    "IntegrityError",
    "WeightsError",
    "decode_safetensors",
    "encode_checkpoint",
    "encode_exact_expert",
    "encode_float_expert",
    "encode_gate",
    "encode_safetensors",
    "float_expert_root",
    "gate_root",
    "load_checkpoint",
    "load_exact_expert",
    "load_float_expert",
    "load_gate",
    "tensors_root",
    "weights_root",
]

EXPERT_FORMAT = "bmoe-expert-int8/1"
FLOAT_EXPERT_FORMAT = "bmoe-expert-f32/1"
GATE_FORMAT = "bmoe-gate/1"
CHECKPOINT_FORMAT = "bmoe-checkpoint/1"
METADATA_KEY = "bmoe"
METADATA_LEAF_NAME = "__metadata__"
INPUT_SCALES = "expert_scales.input"
OUTPUT_SCALES = "expert_scales.output"

# dtype -> (safetensors name, rank in safetensors' write order: higher first)
_DTYPES = {np.dtype("float32"): ("F32", 3), np.dtype("int32"): ("I32", 2), np.dtype("int8"): ("I8", 1)}
_BY_NAME = {name: np.dtype(dtype).newbyteorder("<") for dtype, (name, _) in _DTYPES.items()}

Verify = Callable[[bytes], bool]


class WeightsError(ValueError):
    """Bytes that are not a well-formed, canonical B-MoE file of the expected kind."""


class IntegrityError(WeightsError):
    """A file whose bytes or root differ from the expected ones (tampered, corrupted or the wrong file)."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# ------------------------------------------------------------------------------------------- safetensors


def encode_safetensors(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> bytes:
    """Canonical safetensors bytes of float32/int32/int8 tensors and JSON-able metadata."""
    entries = []
    for name, array in tensors.items():
        array = np.asarray(array)
        if array.dtype not in _DTYPES:
            raise TypeError(f"tensor {name}: dtype {array.dtype} is not float32, int32 or int8")
        entries.append((name, array))
    entries.sort(key=lambda entry: (-_DTYPES[entry[1].dtype][1], entry[0]))
    header: dict[str, Any] = {"__metadata__": {METADATA_KEY: canonical_json(dict(metadata))}}
    blobs, offset = [], 0
    for name, array in entries:
        blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        # key order dtype, shape, data_offsets: the order safetensors writes them in
        header[name] = {"dtype": _DTYPES[array.dtype][0], "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def decode_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(tensors, metadata) of canonical bytes; raises WeightsError on anything `encode_safetensors` would not write."""
    data = bytes(data)
    if len(data) < 8:
        raise WeightsError("too short for a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise WeightsError("the safetensors header runs past the end of the file")
    try:
        header = json.loads(data[8 : 8 + length])
        metadata = json.loads(header.pop("__metadata__")[METADATA_KEY])
        tensors = {}
        for name, info in header.items():
            dtype = _BY_NAME[info["dtype"]]
            start, end = (int(v) for v in info["data_offsets"])
            shape = tuple(int(v) for v in info["shape"])
            if not 0 <= start <= end <= len(data) - 8 - length:
                raise ValueError(f"tensor {name} lies outside the file")
            body = data[8 + length + start : 8 + length + end]
            tensors[name] = np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"malformed safetensors file: {exc!r}") from None
    if not isinstance(metadata, dict):
        raise WeightsError("the bmoe metadata is not a JSON object")
    if encode_safetensors(tensors, metadata) != data:
        raise WeightsError("not a canonical B-MoE safetensors file (re-encoding its contents gives other bytes)")
    return tensors, metadata


def _check_bytes(data: bytes, expected_sha256: bytes | str | None, verify: Verify | None) -> None:
    if expected_sha256 is not None:
        expected = bytes.fromhex(expected_sha256.removeprefix("0x")) if isinstance(expected_sha256, str) else expected_sha256
        actual = hashlib.sha256(data).digest()
        if actual != expected:
            raise IntegrityError(f"sha256 of the file is {actual.hex()}, expected {expected.hex()}; refusing it")
    if verify is not None and not verify(data):
        raise IntegrityError("the file's bytes failed the content check (e.g. its CID is not the expected one)")


def _check_root(kind: str, actual: bytes, expected: bytes | str | None) -> None:
    if expected is None:
        return
    expected = bytes.fromhex(expected.removeprefix("0x")) if isinstance(expected, str) else bytes(expected)
    if actual != expected:
        raise IntegrityError(f"{kind} root of the file is 0x{actual.hex()}, expected 0x{expected.hex()}; refusing it")


def _decode(data: bytes, fmt: str, expected_sha256, verify) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    _check_bytes(data, expected_sha256, verify)
    tensors, metadata = decode_safetensors(data)
    if metadata.get("format") != fmt:
        raise WeightsError(f"expected a {fmt} file, got format {metadata.get('format')!r}")
    return tensors, metadata


def _layer_names(count: int) -> set[str]:
    return {f"layers.{i}.{part}" for i in range(count) for part in ("weight", "bias")}


# ------------------------------------------------------------------------------------------- roots


def weights_root(layers: Sequence[IntLayer]) -> bytes:
    """The registered weights root of an exact expert: the Merkle root over its rows (docs/protocol.md 2.2)."""
    return weights_tree(layers).root


def tensors_root(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> bytes:
    """The root of 2.3 over float32 tensors and metadata (without `format`): gate bundles and float experts.

    One leaf `abi.encode(string name, uint32 row, bytes rowFloat32LE)` per row (a tensor of fewer than two
    dimensions is the single row 0), plus `abi.encode("__metadata__", 0, canonicalJson)`.
    """
    leaves = []
    for name, tensor in sorted(tensors.items()):
        array = np.ascontiguousarray(tensor, dtype="<f4")
        rows = array.reshape(array.shape[0], -1) if array.ndim >= 2 else array.reshape(1, -1)
        leaves += [double_hash(abi_encode(["string", "uint32", "bytes"], [name, r, row.tobytes()])) for r, row in enumerate(rows)]
    meta = {k: v for k, v in metadata.items() if k != "format"}
    leaves.append(double_hash(abi_encode(["string", "uint32", "bytes"], [METADATA_LEAF_NAME, 0, canonical_json(meta).encode()])))
    return MerkleTree(leaves).root


# ------------------------------------------------------------------------------------------- exact experts


def encode_exact_expert(layers: Sequence[IntLayer]) -> bytes:
    """The expert file of an exact expert (the integer layers only: its token scales live in the gate bundle)."""
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise ValueError(f"an expert has 1..{MAX_LAYERS} layers, not {len(layers)}")
    tensors = {}
    for i, layer in enumerate(layers):
        tensors[f"layers.{i}.weight"] = layer.weight
        tensors[f"layers.{i}.bias"] = layer.bias
    requant = [{"multiplier": int(l.multiplier), "shift": int(l.shift), "relu": bool(l.relu)} for l in layers]
    return encode_safetensors(tensors, {"format": EXPERT_FORMAT, "layers": requant})


def load_exact_expert(
    data: bytes,
    *,
    expected_root: bytes | str | None = None,
    expected_sha256: bytes | str | None = None,
    verify: Verify | None = None,
) -> list[IntLayer]:
    """The layers of an expert file, after every check asked for; raises WeightsError / IntegrityError.

    The weights root covers weights and biases only: the requantisation (M, s, relu) is registered beside it, so a
    caller that checks the root but not the bytes (sha256 / CID) must compare the layers' requantisation with the
    registry's `Layer` records.
    """
    tensors, metadata = _decode(data, EXPERT_FORMAT, expected_sha256, verify)
    requant = metadata.get("layers")
    if not isinstance(requant, list) or not 1 <= len(requant) <= MAX_LAYERS:
        raise WeightsError(f"an expert file lists 1..{MAX_LAYERS} layers")
    if set(tensors) != _layer_names(len(requant)):
        raise WeightsError(f"tensors {sorted(tensors)} do not match {len(requant)} layers")
    layers = []
    try:
        for i, q in enumerate(requant):
            if set(q) != {"multiplier", "shift", "relu"} or not isinstance(q["relu"], bool):
                raise ValueError(f"layer {i}: requantisation must be {{multiplier, shift, relu}}")
            if not isinstance(q["multiplier"], int) or not isinstance(q["shift"], int):
                raise ValueError(f"layer {i}: multiplier and shift must be integers")
            layers.append(IntLayer(tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"], q["multiplier"], q["shift"], q["relu"]))
            if i and layers[i].in_dim != layers[i - 1].out_dim:
                raise ValueError(f"layer {i} takes {layers[i].in_dim} inputs, layer {i - 1} gives {layers[i - 1].out_dim}")
    except ValueError as exc:
        raise WeightsError(f"invalid expert file: {exc}") from None
    _check_root("weights", weights_root(layers), expected_root)
    return layers


# ------------------------------------------------------------------------------------------- float experts


def _float_expert_tensors(expert: Expert) -> dict[str, np.ndarray]:
    linears = [expert.fc1, expert.fc2]
    tensors = {}
    for i, linear in enumerate(linears):
        tensors[f"layers.{i}.weight"] = linear.weight.detach().cpu().numpy().astype(np.float32)
        tensors[f"layers.{i}.bias"] = linear.bias.detach().cpu().numpy().astype(np.float32)
    return tensors


_FLOAT_EXPERT_META = {"format": FLOAT_EXPERT_FORMAT, "layers": [{"relu": True}, {"relu": False}]}


def encode_float_expert(expert: Expert) -> bytes:
    """The expert file of a float expert (Linear-ReLU-Linear)."""
    return encode_safetensors(_float_expert_tensors(expert), _FLOAT_EXPERT_META)


def float_expert_root(expert: Expert) -> bytes:
    return tensors_root(_float_expert_tensors(expert), _FLOAT_EXPERT_META)


def load_float_expert(
    data: bytes,
    *,
    expected_root: bytes | str | None = None,
    expected_sha256: bytes | str | None = None,
    verify: Verify | None = None,
) -> Expert:
    """A float `Expert` module (on CPU) from its file, after every check asked for."""
    tensors, metadata = _decode(data, FLOAT_EXPERT_FORMAT, expected_sha256, verify)
    if metadata != _FLOAT_EXPERT_META or set(tensors) != _layer_names(2):
        raise WeightsError("a float expert file holds exactly one Linear-ReLU-Linear block")
    w1, w2 = tensors["layers.0.weight"], tensors["layers.1.weight"]
    if w1.ndim != 2 or w2.shape != (w1.shape[1], w1.shape[0]):
        raise WeightsError(f"layer shapes {w1.shape} and {w2.shape} do not chain back to the input width")
    expert = Expert(w1.shape[1], w1.shape[0])
    try:
        expert.load_state_dict({f"fc{i + 1}.{part}": torch.from_numpy(tensors[f"layers.{i}.{part}"]) for i in range(2) for part in ("weight", "bias")})
    except RuntimeError as exc:
        raise WeightsError(f"invalid float expert file: {exc}") from None
    _check_root("weights", tensors_root(tensors, metadata), expected_root)
    return expert


# ------------------------------------------------------------------------------------------- gate bundle


def _is_expert_param(name: str) -> bool:
    parts = name.split(".")
    return len(parts) > 2 and parts[0] == "blocks" and parts[2] == "experts"


@dataclass(frozen=True)
class Gate:
    """A decoded gate bundle: the model without its experts, and the exact experts' token scales if any.

    The model's expert parameters are NaN placeholders, so that running it without an `ExpertRunner` fails loudly
    instead of returning plausible numbers from random experts.
    """

    model: MoEModel
    input_scales: np.ndarray | None  # float32 [num_layers, num_experts]
    output_scales: np.ndarray | None

    def exact_expert(self, layer: int, expert: int, layers: Sequence[IntLayer]) -> QuantizedExpert:
        """An exact expert of this model from its (separately loaded) integer layers."""
        if self.input_scales is None or self.output_scales is None:
            raise ValueError("this gate bundle has no exact-expert scales (a float model)")
        return QuantizedExpert(tuple(layers), float(self.input_scales[layer, expert]), float(self.output_scales[layer, expert]))


def _gate_contents(
    model: MoEModel, experts: Sequence[Sequence[QuantizedExpert]] | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    config = model.config
    tensors = {
        name: value.detach().cpu().numpy().astype(np.float32)
        for name, value in model.state_dict().items()
        if not _is_expert_param(name)
    }
    if experts is not None:
        shape = (config.num_layers, config.num_experts)
        if (len(experts), len(experts[0])) != shape:
            raise ValueError(f"need exact experts for {shape[0]} layers x {shape[1]} experts")
        tensors[INPUT_SCALES] = np.array([[q.input_scale for q in layer] for layer in experts], dtype=np.float32)
        tensors[OUTPUT_SCALES] = np.array([[q.output_scale for q in layer] for layer in experts], dtype=np.float32)
    metadata = {
        "format": GATE_FORMAT,
        "config": config.to_dict(),
        "expert_count": config.num_layers * config.num_experts,
        "exact": experts is not None,
    }
    return tensors, metadata


def encode_gate(model: MoEModel, experts: Sequence[Sequence[QuantizedExpert]] | None = None) -> bytes:
    """The gate bundle of `model`; pass its exact experts ([layer][expert]) to include their token scales."""
    return encode_safetensors(*_gate_contents(model, experts))


def gate_root(model: MoEModel, experts: Sequence[Sequence[QuantizedExpert]] | None = None) -> bytes:
    """The registered gate root of `model` (docs/protocol.md 2.3)."""
    return tensors_root(*_gate_contents(model, experts))


def load_gate(
    data: bytes,
    *,
    expected_root: bytes | str | None = None,
    expected_sha256: bytes | str | None = None,
    verify: Verify | None = None,
) -> Gate:
    """The gate bundle as a `Gate` (model on CPU), after every check asked for."""
    tensors, metadata = _decode(data, GATE_FORMAT, expected_sha256, verify)
    try:
        config = MoEConfig.from_dict(metadata["config"])
        if metadata.get("expert_count") != config.num_layers * config.num_experts:
            raise ValueError("expert_count does not match the configuration")
        exact = metadata["exact"]
        model = MoEModel(config)
        expected = {name for name in model.state_dict() if not _is_expert_param(name)}
        if exact:
            expected |= {INPUT_SCALES, OUTPUT_SCALES}
        if set(tensors) != expected:
            raise ValueError(f"tensors differ from the configuration's: {sorted(set(tensors) ^ expected)}")
        state = {name: torch.from_numpy(tensors[name]) for name in model.state_dict() if not _is_expert_param(name)}
        model.load_state_dict(state, strict=False)
        for block in model.blocks:
            for p in block.experts.parameters():
                p.data.fill_(math.nan)
        scales = (tensors[INPUT_SCALES], tensors[OUTPUT_SCALES]) if exact else (None, None)
        shape = (config.num_layers, config.num_experts)
        if exact and not all(s.shape == shape and np.all(np.isfinite(s)) and np.all(s > 0) for s in scales):
            raise ValueError(f"expert scales must be positive and of shape {shape}")
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"invalid gate bundle: {exc}") from None
    _check_root("gate", tensors_root(tensors, metadata), expected_root)
    model.eval()
    return Gate(model, *scales)


# ------------------------------------------------------------------------------------------- checkpoints


def encode_checkpoint(model: MoEModel) -> bytes:
    """The whole float model (config in the metadata): what training produces and quantisation starts from."""
    tensors = {name: value.detach().cpu().numpy().astype(np.float32) for name, value in model.state_dict().items()}
    return encode_safetensors(tensors, {"format": CHECKPOINT_FORMAT, "config": model.config.to_dict()})


def load_checkpoint(data: bytes, *, expected_sha256: bytes | str | None = None, verify: Verify | None = None) -> MoEModel:
    """A float model (on CPU, eval mode) from a checkpoint."""
    tensors, metadata = _decode(data, CHECKPOINT_FORMAT, expected_sha256, verify)
    try:
        model = MoEModel(MoEConfig.from_dict(metadata["config"]))
        model.load_state_dict({name: torch.from_numpy(t) for name, t in tensors.items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"invalid checkpoint: {exc}") from None
    return model.eval()
