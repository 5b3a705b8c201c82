"""Merkle trees exactly as `@openzeppelin/merkle-tree`'s `StandardMerkleTree` builds them (docs/protocol.md, 2).

The tree works on leaf hashes that the caller already computed (`double_hash` of an ABI encoding, see
`bmoe_py.crypto.leaves`), so one tree type serves token results and expert weights. Layout, as in the JS library:
leaves sorted by hash (stable), a complete binary tree in one array with the root at 0, the children of node i at
2i+1 and 2i+2, and sorted leaf k at position `len - 1 - k`. Pairs are hashed in sorted order, which is what
OpenZeppelin's `MerkleProof.verify` expects; a proof is the list of sibling hashes from the leaf up.

The nodes live in one `bytearray` (32 bytes each), not in per-node Python objects, so that a 65,536-leaf window
builds in a fraction of a second.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .hashing import keccak256

__all__ = ["MerkleTree", "double_hash", "hash_pair", "process_proof", "verify"]

HASH_SIZE = 32


def double_hash(encoded: bytes) -> bytes:
    """The leaf hash of an ABI-encoded value: keccak256(keccak256(encoded)), as `StandardMerkleTree` does.

    Hashing twice keeps a 64-byte leaf encoding from being mistaken for an inner node (second pre-image attack).
    """
    return keccak256(keccak256(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak256 of the two hashes in ascending order (`MerkleProof`'s commutative hashing)."""
    return keccak256(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf`."""
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node


def verify(proof: Iterable[bytes], root: bytes, leaf: bytes) -> bool:
    """True when `proof` places `leaf` under `root` (same argument order as `MerkleProof.verify`)."""
    return process_proof(leaf, proof) == bytes(root)


def _check_hash(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != HASH_SIZE:
        raise ValueError(f"Merkle tree nodes must be 32 bytes, got {len(value)}")
    return value


class MerkleTree:
    """A `StandardMerkleTree`-compatible tree over leaf hashes; `MerkleTree.of` hashes encoded values first."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        count = len(leaves)
        if count == 0:
            raise ValueError("a Merkle tree needs at least one leaf")
        packed = b"".join(_check_hash(leaf) for leaf in leaves)
        # Big-endian byte strings order like the uint256 values that the JS library compares; numpy's
        # fixed-width byte strings compare with memcmp, and a stable sort matches Array.prototype.sort.
        keys = np.frombuffer(packed, dtype=f"S{HASH_SIZE}")
        order = np.argsort(keys, kind="stable")
        size = 2 * count - 1
        nodes = bytearray(HASH_SIZE * size)
        # Sorted leaf k goes to position size-1-k, so the leaf region holds the sorted leaves reversed.
        nodes[HASH_SIZE * (count - 1) :] = keys[order[::-1]].tobytes()
        for i in range(count - 2, -1, -1):
            left = 2 * i + 1
            a = nodes[HASH_SIZE * left : HASH_SIZE * (left + 1)]
            b = nodes[HASH_SIZE * (left + 1) : HASH_SIZE * (left + 2)]
            nodes[HASH_SIZE * i : HASH_SIZE * (i + 1)] = keccak256(a + b if a <= b else b + a)
        self._nodes = bytes(nodes)
        self._count = count
        # value index (the order the leaves were given in) -> position in the node array
        self._position = np.empty(count, dtype=np.int64)
        self._position[order] = size - 1 - np.arange(count, dtype=np.int64)
        self._lookup: dict[bytes, int] | None = None

    @classmethod
    def of(cls, encoded_values: Iterable[bytes]) -> MerkleTree:
        """Builds the tree over `double_hash` of each ABI-encoded value (like `StandardMerkleTree.of`)."""
        return cls([double_hash(value) for value in encoded_values])

    def __len__(self) -> int:
        return self._count

    @property
    def root(self) -> bytes:
        return self._node(0)

    def leaf(self, index: int) -> bytes:
        """The hash of the leaf given at position `index` of the constructor's sequence."""
        return self._node(self._tree_index(index))

    def index_of(self, leaf: bytes) -> int:
        """The position of `leaf` in the constructor's sequence (the last one, if the leaf repeats)."""
        if self._lookup is None:
            self._lookup = {self.leaf(i): i for i in range(self._count)}
        try:
            return self._lookup[bytes(leaf)]
        except KeyError:
            raise ValueError(f"leaf 0x{bytes(leaf).hex()} is not in the tree") from None

    def proof(self, leaf: int | bytes) -> list[bytes]:
        """The sibling hashes from a leaf (given by its index in the constructor's sequence, or its hash) to the root."""
        index = leaf if isinstance(leaf, int) else self.index_of(leaf)
        position = self._tree_index(index)
        proof = []
        while position > 0:
            sibling = position + 1 if position % 2 == 1 else position - 1
            proof.append(self._node(sibling))
            position = (position - 1) // 2
        return proof

    def verify(self, leaf: int | bytes, proof: Iterable[bytes]) -> bool:
        """True when `proof` places the leaf (index or hash) under this tree's root."""
        leaf_hash = self.leaf(leaf) if isinstance(leaf, int) else bytes(leaf)
        return verify(proof, self.root, leaf_hash)

    def _tree_index(self, index: int) -> int:
        if not -self._count <= index < self._count:
            raise IndexError(f"leaf index {index} out of range for {self._count} leaves")
        return int(self._position[index])

    def _node(self, position: int) -> bytes:
        return self._nodes[HASH_SIZE * position : HASH_SIZE * (position + 1)]
