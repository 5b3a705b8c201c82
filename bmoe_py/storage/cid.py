"""CIDv0 of a file as Kubo's `ipfs add` computes it with its default import settings, so that a
download can be checked against the CID recorded on chain without trusting the node that served it.

Defaults reproduced (Kubo 0.22, `ipfs add` without options):
- chunker `size-262144`: fixed 256 KiB chunks, the last one shorter;
- leaves are dag-pb nodes wrapping a UnixFS `File` message (raw-leaves is off for CIDv0);
- balanced layout, at most 174 links per node: leaves are grouped 174 at a time into parents, those
  parents 174 at a time, and so on until one root remains; a file of one chunk is its own root;
- every block is hashed with sha256 and its CIDv0 is the base58btc multihash.

Protobuf is written by hand: the encodings are tiny and must match Go's byte for byte (dag-pb writes
Links before Data; UnixFS `blocksizes` are not packed; an empty chunk has no Data field).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from bmoe_py.storage.errors import InvalidCid

CHUNK_SIZE = 262_144
MAX_LINKS = 174

_SHA2_256 = 0x12
_DAG_PB = 0x70
_UNIXFS_FILE = 2
_B58_ALPHABET = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_B32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


# ---------------------------------------------------------------- encodings


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = bytearray()
    while n:
        n, rem = divmod(n, 58)
        out.append(_B58_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return (_B58_ALPHABET[:1] * pad + bytes(reversed(out))).decode()


def b58decode(text: str) -> bytes:
    n = 0
    for c in text.encode():
        if c not in _B58_INDEX:
            raise InvalidCid(f"{text!r} is not base58btc")
        n = n * 58 + _B58_INDEX[c]
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _b32decode(text: str) -> bytes:
    bits = nbits = 0
    out = bytearray()
    for c in text:
        i = _B32_ALPHABET.find(c)
        if i < 0:
            raise InvalidCid(f"{text!r} is not lower-case base32")
        bits = (bits << 5) | i
        nbits += 5
        if nbits >= 8:
            nbits -= 8
            out.append((bits >> nbits) & 0xFF)
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, pos
    raise InvalidCid("truncated varint")


def _field_varint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _field_bytes(field: int, value: bytes | memoryview) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(value)) + value


# ---------------------------------------------------------------- CIDs


@dataclass(frozen=True)
class Cid:
    """A parsed CID: version, multicodec of the block and the multihash of its bytes."""

    version: int
    codec: int
    multihash: bytes

    @property
    def is_default_file_root(self) -> bool:
        """Whether this CID could be the root of a file imported with Kubo's CIDv0 defaults:
        a dag-pb block named by a sha2-256 multihash (CIDv0, or the same block written as CIDv1)."""
        return self.codec == _DAG_PB and self.multihash[:2] == bytes([_SHA2_256, 32])


def parse_cid(text: str) -> Cid:
    """Parse a CIDv0 (`Qm...`) or a base32 CIDv1 (`b...`); raise `InvalidCid` for anything else."""
    text = text.strip()
    if len(text) == 46 and text.startswith("Qm"):
        mh = b58decode(text)
        if len(mh) != 34 or mh[:2] != bytes([_SHA2_256, 32]):
            raise InvalidCid(f"{text!r} is not a CIDv0 (sha2-256 multihash)")
        return Cid(0, _DAG_PB, mh)
    if text.startswith("b") and len(text) > 8:
        raw = _b32decode(text[1:])
        version, pos = _read_varint(raw, 0)
        codec, pos = _read_varint(raw, pos)
        _, after_code = _read_varint(raw, pos)
        digest_len, digest_at = _read_varint(raw, after_code)
        if version != 1 or digest_at + digest_len != len(raw):
            raise InvalidCid(f"{text!r} is not a CIDv1")
        return Cid(1, codec, raw[pos:])
    raise InvalidCid(f"{text!r} is not a CID (expected CIDv0 'Qm...' or base32 CIDv1 'b...')")


def _multihash(block: bytes) -> bytes:
    return bytes([_SHA2_256, 32]) + hashlib.sha256(block).digest()


# ---------------------------------------------------------------- the DAG


@dataclass(frozen=True)
class _Node:
    multihash: bytes
    tsize: int  # cumulative size: this block plus every block below it (a link's Tsize)
    filesize: int  # bytes of file data below this node


def _leaf(chunk: bytes | memoryview) -> _Node:
    unixfs = _field_varint(1, _UNIXFS_FILE)
    if chunk:
        unixfs += _field_bytes(2, chunk)
    unixfs += _field_varint(3, len(chunk))
    block = _field_bytes(1, unixfs)
    return _Node(_multihash(block), len(block), len(chunk))


def _parent(children: list[_Node]) -> _Node:
    links = b"".join(
        _field_bytes(2, _field_bytes(1, c.multihash) + _field_bytes(2, b"") + _field_varint(3, c.tsize))
        for c in children
    )
    filesize = sum(c.filesize for c in children)
    unixfs = _field_varint(1, _UNIXFS_FILE) + _field_varint(3, filesize)
    unixfs += b"".join(_field_varint(4, c.filesize) for c in children)
    block = links + _field_bytes(1, unixfs)
    return _Node(_multihash(block), len(block) + sum(c.tsize for c in children), filesize)


@dataclass(frozen=True)
class FileDag:
    """What importing a file produces: its root CID, the cumulative size of its blocks (the `Size`
    that `ipfs add` reports) and the file's length."""

    cid: str
    dag_size: int
    file_size: int


class CidBuilder:
    """Incremental CIDv0 computation: feed the file's bytes in pieces of any size, then `finish()`.
    Memory stays at one chunk plus one small record per chunk."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._leaves: list[_Node] = []

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        if self._buffer:
            take = CHUNK_SIZE - len(self._buffer)
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) < CHUNK_SIZE:
                return
            self._leaves.append(_leaf(bytes(self._buffer)))
            self._buffer.clear()
        while len(view) >= CHUNK_SIZE:
            self._leaves.append(_leaf(view[:CHUNK_SIZE]))
            view = view[CHUNK_SIZE:]
        self._buffer += view

    def finish(self) -> FileDag:
        # The last chunk is the remainder; an empty file is one empty leaf.
        if self._buffer or not self._leaves:
            self._leaves.append(_leaf(bytes(self._buffer)))
            self._buffer.clear()
        level = self._leaves
        while len(level) > 1:
            level = [_parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
        root = level[0]
        return FileDag(b58encode(root.multihash), root.tsize, root.filesize)


def file_dag(data: bytes | Iterable[bytes] | BinaryIO) -> FileDag:
    """The DAG of `data` (bytes, an iterable of byte pieces, or a binary file object)."""
    builder = CidBuilder()
    if isinstance(data, (bytes, bytearray, memoryview)):
        builder.update(bytes(data))
    elif hasattr(data, "read"):
        while piece := data.read(4 * CHUNK_SIZE):
            builder.update(piece)
    else:
        for piece in data:
            builder.update(piece)
    return builder.finish()


def cid_of_bytes(data: bytes) -> str:
    """The CIDv0 that `ipfs add` (default settings) gives these bytes."""
    return file_dag(data).cid
