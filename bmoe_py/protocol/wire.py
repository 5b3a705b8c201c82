"""Binary frames of the edge node's HTTP API (docs/protocol.md 8).

Tokens travel as raw little-endian tensor bytes, not JSON lists: a 1,024-token request of 32-wide int8 tokens is
32 KiB plus a small header, and decoding is a `np.frombuffer`. A frame is

    b"BMOE" | u8 version (1) | u32 big-endian header length | header (canonical JSON, UTF-8) | tensor bytes

where the header names every tensor's dtype and shape in `"tensors"`, in the order their bytes follow. Decoding
checks every length before it allocates anything, so a malformed or oversized frame costs the server nothing but a
`FrameError` (the edge node answers it with a 4xx).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..crypto.receipts import Receipt

__all__ = [
    "CONTENT_TYPE",
    "MAX_FRAME_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_TOKENS_PER_REQUEST",
    "ForwardRequest",
    "ForwardResponse",
    "FrameError",
    "decode_frame",
    "encode_frame",
]

MAGIC = b"BMOE"
VERSION = 1
CONTENT_TYPE = "application/x-bmoe-frame"
MAX_HEADER_BYTES = 64 * 1024
MAX_FRAME_BYTES = 64 * 1024 * 1024  # 16,384 tokens of 4,096 float32 features fit
MAX_TOKENS_PER_REQUEST = 16_384
_DTYPES = {"int8": np.dtype("int8"), "float32": np.dtype("<f4")}
_PREFIX = struct.Struct(">4sBI")


class FrameError(ValueError):
    """Bytes that are not a well-formed frame, or a frame whose contents break the API's rules (the HTTP 400s)."""


def encode_frame(header: dict[str, Any], tensors: dict[str, np.ndarray] | None = None) -> bytes:
    """A frame of a JSON-able header and int8/float32 tensors (sent in the order given)."""
    tensors = tensors or {}
    specs, blobs = [], []
    for name, array in tensors.items():
        array = np.asarray(array)
        dtype = _dtype_name(array.dtype)
        if dtype is None:
            raise TypeError(f"tensor {name}: dtype {array.dtype} is not int8 or float32")
        specs.append({"name": name, "dtype": dtype, "shape": list(array.shape)})
        blobs.append(np.ascontiguousarray(array, dtype=_DTYPES[dtype]).tobytes())
    text = json.dumps({**header, "tensors": specs}, sort_keys=True, separators=(",", ":")).encode()
    return _PREFIX.pack(MAGIC, VERSION, len(text)) + text + b"".join(blobs)


def decode_frame(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header without "tensors", {name: array}) of a frame; raises FrameError on anything malformed."""
    if len(data) > max_bytes:
        raise FrameError(f"frame of {len(data)} bytes exceeds the limit of {max_bytes}")
    if len(data) < _PREFIX.size:
        raise FrameError(f"frame of {len(data)} bytes is shorter than its {_PREFIX.size}-byte prefix")
    magic, version, length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise FrameError(f"not a B-MoE frame (starts with {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise FrameError(f"frame version {version} is not supported (this side speaks version {VERSION})")
    if length > MAX_HEADER_BYTES or _PREFIX.size + length > len(data):
        raise FrameError(f"header length {length} is larger than the frame or the {MAX_HEADER_BYTES}-byte limit")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + length])
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"the header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("tensors"), list):
        raise FrameError('the header must be a JSON object with a "tensors" list')
    tensors: dict[str, np.ndarray] = {}
    offset = _PREFIX.size + length
    for spec in header.pop("tensors"):
        name, dtype, shape = _tensor_spec(spec)
        if name in tensors:
            raise FrameError(f"tensor {name!r} appears twice")
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + size > len(data):
            raise FrameError(f"tensor {name!r} of shape {shape} needs {size} bytes, the frame has {len(data) - offset} left")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
        offset += size
    if offset != len(data):
        raise FrameError(f"{len(data) - offset} bytes follow the last tensor")
    return header, tensors


def _dtype_name(dtype: np.dtype) -> str | None:
    if dtype == np.int8:
        return "int8"
    if dtype == np.float32:
        return "float32"
    return None


def _tensor_spec(spec: Any) -> tuple[str, np.dtype, tuple[int, ...]]:
    try:
        name, dtype, shape = spec["name"], _DTYPES[spec["dtype"]], tuple(spec["shape"])
    except (TypeError, KeyError):
        raise FrameError(f"bad tensor entry {spec!r}: needs name, dtype (int8 or float32) and shape") from None
    if not isinstance(name, str) or not all(isinstance(d, int) and 0 <= d <= 1 << 30 for d in shape) or len(shape) > 4:
        raise FrameError(f"bad tensor entry {spec!r}: name must be a string, shape at most 4 non-negative ints")
    return name, dtype, shape


def _hex32(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise FrameError(f"{field} must be 0x followed by 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise FrameError(f"{field} must be 0x followed by 64 hex digits") from None


def _uint(header: dict[str, Any], field: str, bits: int = 256) -> int:
    value = header.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise FrameError(f"{field} must be an integer in [0, 2^{bits})")
    return value


@dataclass(frozen=True)
class ForwardRequest:
    """POST /v1/forward: run `tokens` [n, inDim] through one expert version for one task.

    `request_id` is `keccak256(abi.encode(taskId, publisher, nonce))` (protocol 2.1), chosen by the publisher;
    `expert_version` 0 means the latest version the node serves.
    """

    task_id: int
    model_id: int
    expert_index: int
    expert_version: int
    request_id: bytes
    tokens: np.ndarray

    def encode(self) -> bytes:
        header = {
            "task_id": self.task_id,
            "model_id": self.model_id,
            "expert_index": self.expert_index,
            "expert_version": self.expert_version,
            "request_id": "0x" + bytes(self.request_id).hex(),
        }
        return encode_frame(header, {"tokens": self.tokens})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> ForwardRequest:
        header, tensors = decode_frame(data, max_bytes)
        tokens = tensors.get("tokens")
        if tokens is None or len(tensors) != 1:
            raise FrameError(f'a forward request carries exactly one tensor, "tokens"; got {sorted(tensors)}')
        if tokens.ndim != 2 or tokens.shape[0] == 0:
            raise FrameError(f"tokens must be a non-empty [n, inDim] matrix, got shape {list(tokens.shape)}")
        if tokens.shape[0] > MAX_TOKENS_PER_REQUEST:
            raise FrameError(f"{tokens.shape[0]} tokens exceed the limit of {MAX_TOKENS_PER_REQUEST} per request")
        return cls(
            _uint(header, "task_id"),
            _uint(header, "model_id"),
            _uint(header, "expert_index", 32),
            _uint(header, "expert_version", 32),
            _hex32(header.get("request_id"), "request_id"),
            tokens,
        )


@dataclass(frozen=True)
class ForwardResponse:
    """The answer to a forward request: the outputs [n, outDim] and the node's signed EIP-712 receipt over them."""

    receipt: Receipt
    signature: bytes
    outputs: np.ndarray

    def encode(self) -> bytes:
        r = self.receipt
        header = {
            "task_id": r.task_id,
            "node": r.node,
            "model_id": r.model_id,
            "expert_index": r.expert_index,
            "expert_version": r.expert_version,
            "request_id": "0x" + bytes(r.request_id).hex(),
            "root": "0x" + bytes(r.root).hex(),
            "token_count": r.token_count,
            "signature": "0x" + bytes(self.signature).hex(),
        }
        return encode_frame(header, {"outputs": self.outputs})

    @classmethod
    def decode(cls, data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> ForwardResponse:
        header, tensors = decode_frame(data, max_bytes)
        outputs = tensors.get("outputs")
        if outputs is None or outputs.ndim != 2:
            raise FrameError('a forward response carries one [n, outDim] tensor, "outputs"')
        node = header.get("node")
        signature = header.get("signature")
        if not isinstance(node, str) or not isinstance(signature, str) or not signature.startswith("0x"):
            raise FrameError("a forward response names its node and carries a 0x-hex signature")
        try:
            signature_bytes = bytes.fromhex(signature[2:])
        except ValueError:
            raise FrameError("the signature is not hex") from None
        receipt = Receipt(
            task_id=_uint(header, "task_id"),
            node=node,
            model_id=_uint(header, "model_id"),
            expert_index=_uint(header, "expert_index", 32),
            expert_version=_uint(header, "expert_version", 32),
            request_id=_hex32(header.get("request_id"), "request_id"),
            root=_hex32(header.get("root"), "root"),
            token_count=_uint(header, "token_count", 64),
        )
        if receipt.token_count != outputs.shape[0]:
            raise FrameError(f"the receipt covers {receipt.token_count} tokens, the response carries {outputs.shape[0]}")
        return cls(receipt, signature_bytes, outputs)
