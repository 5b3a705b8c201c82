"""ABI words for the static fields of the protocol's structs.

Leaves are hashed once per token, and `eth_abi.encode` costs ~45 us per call, which would dominate hashing a window
of 65,536 tokens; a static ABI encoding is only the concatenation of 32-byte words, so it is written out here.
The tests check every encoding against `eth_abi`.
"""
from __future__ import annotations

WORD = 32


def uint(value: int, bits: int = 256) -> bytes:
    """A uint<bits> word (big-endian, left-padded)."""
    if not 0 <= value < 2**bits:
        raise ValueError(f"{value} does not fit uint{bits}")
    return value.to_bytes(WORD, "big")


def sint(value: int, bits: int) -> bytes:
    """An int<bits> word, sign-extended to 256 bits as the ABI wants."""
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f"{value} does not fit int{bits}")
    return value.to_bytes(WORD, "big", signed=True)


def address(value: str) -> bytes:
    """An address word from a 0x-prefixed hex string (checksummed or not)."""
    raw = bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    if len(raw) != 20:
        raise ValueError(f"{value!r} is not a 20-byte address")
    return bytes(12) + raw


def bytes32(value: bytes) -> bytes:
    """A bytes32 word."""
    value = bytes(value)
    if len(value) != WORD:
        raise ValueError(f"expected 32 bytes, got {len(value)}")
    return value


def dynamic_bytes(value: bytes) -> bytes:
    """The tail of a `bytes` value: its length word, then the data right-padded to whole words."""
    return uint(len(value)) + value + bytes(-len(value) % WORD)
