"""keccak256, as Ethereum uses it (not NIST SHA3-256).

Merkle trees hash tens of thousands of nodes, so the per-call overhead matters: `safe-pysha3` (a dependency of
eth-brownie) hashes 64 bytes in under 1 us, against about 10 us through `eth_hash`'s pycryptodome backend.
"""
from __future__ import annotations

try:
    from sha3 import keccak_256 as _keccak_256

    def keccak256(data: bytes) -> bytes:
        """keccak256 of `data` (32 bytes)."""
        return _keccak_256(data).digest()

except ImportError:  # pragma: no cover - only where safe-pysha3 is missing
    from eth_hash.auto import keccak as keccak256  # type: ignore[assignment]

__all__ = ["keccak256"]
