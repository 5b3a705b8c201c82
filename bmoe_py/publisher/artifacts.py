"""The files of a published model and their on-chain identities (docs/protocol.md sections 2.2 and 2.3).

A model is published as one gate bundle and one file per expert, each canonical safetensors bytes:

- an **expert file** holds the exact int8 layers of one expert (`bmoe_py.model.weights`); its weights root is the
  Merkle root over its rows (2.2), the root the fraud proof checks a row against;
- the **gate bundle** holds everything else the publisher runs: the float gate, input projection, position
  embedding, norms and head, the quantisation scales that turn float tokens into the experts' int8 inputs and back,
  and the model's configuration. Its root (2.3) is the Merkle root over the rows of every tensor plus one leaf for
  the metadata, so that one tensor row can be proven against the chain the same way as an expert row.

"Canonical" means: the same model always gives the same bytes, hence the same CID. safetensors orders tensors
deterministically, but writes the `__metadata__` map in hash order; a single metadata entry (`bmoe`, canonical
JSON) sidesteps that.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from eth_abi import encode as abi_encode

from ..crypto.merkle import MerkleTree, double_hash
from ..crypto.leaves import weights_tree
from ..model.int8_ref import IntLayer
from .publish import ExpertFile, GateFile
from .records import LayerSpec

__all__ = [
    "GATE_FORMAT",
    "GateBundle",
    "FileFormatError",
    "decode_expert",
    "decode_gate",
    "encode_expert",
    "encode_gate",
    "expert_file",
    "gate_file",
    "gate_root",
    "read_metadata",
]

GATE_FORMAT = "bmoe-gate/1"
METADATA_KEY = "bmoe"
METADATA_LEAF_NAME = "__metadata__"


class FileFormatError(ValueError):
    """Bytes that are not a well-formed B-MoE file."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def read_metadata(data: bytes) -> dict[str, Any]:
    """The `bmoe` metadata entry of a safetensors file, parsed (the library gives tensors only)."""
    if len(data) < 8:
        raise FileFormatError("too short for a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise FileFormatError("the safetensors header runs past the end of the file")
    try:
        header = json.loads(data[8 : 8 + length])
        return json.loads(header["__metadata__"][METADATA_KEY])
    except (ValueError, KeyError, TypeError) as exc:
        raise FileFormatError(f"no `{METADATA_KEY}` metadata in the safetensors header ({exc})") from None


# ---------------------------------------------------------------------------------------------- experts


EXPERT_FORMAT = "bmoe-expert-int8/1"


def encode_expert(layers: Sequence[IntLayer]) -> bytes:
    """Canonical safetensors of an exact expert: `layers.<i>.weight` (int8 [out, in]), `layers.<i>.bias`
    (int32 [out]) and the requantisation of each layer in the metadata."""
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        tensors[f"layers.{i}.weight"] = np.ascontiguousarray(layer.weight, dtype=np.int8)
        tensors[f"layers.{i}.bias"] = np.ascontiguousarray(layer.bias, dtype="<i4")
    requant = [{"multiplier": int(l.multiplier), "shift": int(l.shift), "relu": bool(l.relu)} for l in layers]
    metadata = {"format": EXPERT_FORMAT, "layers": requant}
    return save(tensors, metadata={METADATA_KEY: canonical_json(metadata)})


def decode_expert(data: bytes) -> list[IntLayer]:
    """The layers of an expert file; raises FileFormatError on anything else."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    metadata = read_metadata(data)
    if metadata.get("format") != EXPERT_FORMAT:
        raise FileFormatError(f"not an expert file (format is not {EXPERT_FORMAT})")
    try:
        tensors = load(data)
        requant = metadata["layers"]
        layers = [
            IntLayer(
                tensors[f"layers.{i}.weight"],
                tensors[f"layers.{i}.bias"],
                int(q["multiplier"]),
                int(q["shift"]),
                bool(q["relu"]),
            )
            for i, q in enumerate(requant)
        ]
    except (SafetensorError, KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"malformed expert file: {exc}") from None
    if len(tensors) != 2 * len(layers):
        raise FileFormatError(f"expert file has {len(tensors)} tensors for {len(layers)} layers")
    return layers


def expert_file(index: int, layers: Sequence[IntLayer]) -> ExpertFile:
    """An expert ready to publish: its canonical bytes, weights root (2.2) and registry layer specs."""
    return ExpertFile(index, encode_expert(layers), weights_tree(layers).root, tuple(LayerSpec.of(l) for l in layers))


# ---------------------------------------------------------------------------------------------- gate


class GateBundle:
    """The float part of a model: named float32 tensors and JSON metadata (the model's config, its quantisation
    scales' meaning, how expert indices map to MoE layers)."""

    def __init__(self, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
        self.tensors = {name: np.ascontiguousarray(t, dtype="<f4") for name, t in sorted(tensors.items())}
        self.metadata = dict(metadata)
        if any(name == METADATA_LEAF_NAME for name in self.tensors):
            raise ValueError(f"{METADATA_LEAF_NAME!r} is reserved for the metadata leaf")

    @property
    def root(self) -> bytes:
        return gate_root(self.tensors, self.metadata)


def gate_leaves(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> list[bytes]:
    """Leaf hashes of docs/protocol.md 2.3: one per tensor row, plus one for the metadata.

    Row r of a tensor of shape (n, ...) is `tensor[r]` flattened; a tensor of fewer than two dimensions is one row.
    """
    leaves = []
    for name, tensor in sorted(tensors.items()):
        array = np.ascontiguousarray(tensor, dtype="<f4")
        rows = array.reshape(array.shape[0], -1) if array.ndim >= 2 else array.reshape(1, -1)
        for r, row in enumerate(rows):
            leaves.append(double_hash(abi_encode(["string", "uint32", "bytes"], [name, r, row.tobytes()])))
    meta = canonical_json(dict(metadata)).encode()
    leaves.append(double_hash(abi_encode(["string", "uint32", "bytes"], [METADATA_LEAF_NAME, 0, meta])))
    return leaves


def gate_root(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> bytes:
    """The gate root registered with the model (docs/protocol.md 2.3)."""
    return MerkleTree(gate_leaves(tensors, metadata)).root


def encode_gate(bundle: GateBundle) -> bytes:
    from safetensors.numpy import save

    metadata = {**bundle.metadata, "format": GATE_FORMAT}
    return save(dict(bundle.tensors), metadata={METADATA_KEY: canonical_json(metadata)})


def decode_gate(data: bytes) -> GateBundle:
    """Parses a gate bundle; raises FileFormatError on anything else."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    metadata = read_metadata(data)
    if metadata.pop("format", None) != GATE_FORMAT:
        raise FileFormatError(f"not a gate bundle (format is not {GATE_FORMAT})")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as exc:
        raise FileFormatError(f"malformed safetensors: {exc}") from None
    for name, tensor in tensors.items():
        if tensor.dtype != np.float32:
            raise FileFormatError(f"gate tensor {name} is {tensor.dtype}, not float32")
    return GateBundle(tensors, metadata)


def gate_file(bundle: GateBundle) -> GateFile:
    return GateFile(encode_gate(bundle), bundle.root)
