"""The two kinds of Merkle leaves (docs/protocol.md 2.1 and 2.2) and the trees built from them.

A token leaf binds one token's result to a node, model, expert version and request; a weight-row leaf binds one
row of an exact expert's weights and its bias to the expert's registered weights root.

The encodings are written out word by word (see `_abi`); the tests check them against `eth_abi`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model.int8_ref import IntLayer
from . import _abi
from .hashing import keccak256
from .merkle import MerkleTree, double_hash

__all__ = [
    "TokenLeaf",
    "WeightRow",
    "WeightsTree",
    "request_id",
    "row_leaf",
    "token_tree",
    "vector_hash",
    "weights_tree",
]

def vector_hash(vector: np.ndarray) -> bytes:
    """keccak256 of a token's input or output vector as the protocol serialises it.

    int8 vectors (exact experts) are one two's-complement byte per element; float vectors are float32
    little-endian, whatever the machine's byte order.
    """
    vector = np.asarray(vector)
    if vector.dtype == np.int8:
        return keccak256(vector.tobytes())
    if vector.dtype.kind == "f":
        return keccak256(vector.astype("<f4").tobytes())
    raise TypeError(f"token vectors are int8 or float, not {vector.dtype}")


def request_id(task_id: int, publisher: str, nonce: int) -> bytes:
    """keccak256(abi.encode(uint256 taskId, address publisher, uint256 nonce)); the nonce is fresh per request."""
    return keccak256(_abi.uint(task_id) + _abi.address(publisher) + _abi.uint(nonce))


@dataclass(frozen=True)
class TokenLeaf:
    """One token's result, the `IResultLedger.Leaf` struct."""

    node: str
    model_id: int
    expert_index: int
    expert_version: int
    request_id: bytes
    token_index: int
    input_hash: bytes
    output_hash: bytes

    @classmethod
    def from_vectors(
        cls,
        node: str,
        model_id: int,
        expert_index: int,
        expert_version: int,
        request_id: bytes,
        token_index: int,
        token_input: np.ndarray,
        token_output: np.ndarray,
    ) -> TokenLeaf:
        """The leaf of a token whose input and output vectors are at hand (hashes them with `vector_hash`)."""
        return cls(
            node,
            model_id,
            expert_index,
            expert_version,
            request_id,
            token_index,
            vector_hash(token_input),
            vector_hash(token_output),
        )

    def encode(self) -> bytes:
        """abi.encode(address, uint256, uint32, uint32, bytes32, uint32, bytes32, bytes32)."""
        return b"".join(
            (
                _abi.address(self.node),
                _abi.uint(self.model_id),
                _abi.uint(self.expert_index, 32),
                _abi.uint(self.expert_version, 32),
                _abi.bytes32(self.request_id),
                _abi.uint(self.token_index, 32),
                _abi.bytes32(self.input_hash),
                _abi.bytes32(self.output_hash),
            )
        )

    def hash(self) -> bytes:
        """The leaf hash that `ResultLedger.leafHash` computes and `MerkleProof` checks."""
        return double_hash(self.encode())

    def as_tuple(self) -> tuple:
        """The struct as a contract call argument."""
        return (
            self.node,
            self.model_id,
            self.expert_index,
            self.expert_version,
            bytes(self.request_id),
            self.token_index,
            bytes(self.input_hash),
            bytes(self.output_hash),
        )


def token_tree(leaves: Sequence[TokenLeaf]) -> MerkleTree:
    """The Merkle tree over a request's (or a window's) token leaves; proofs are by position in `leaves`."""
    return MerkleTree([leaf.hash() for leaf in leaves])


@dataclass(frozen=True)
class WeightRow:
    """One output row of an exact layer: its int8 weights (one byte each) and its int32 bias."""

    layer: int
    row: int
    bias: int
    weights: bytes

    def encode(self) -> bytes:
        """abi.encode(uint32 layer, uint32 row, int32 bias, bytes weights)."""
        return b"".join(
            (
                _abi.uint(self.layer, 32),
                _abi.uint(self.row, 32),
                _abi.sint(self.bias, 32),
                _abi.uint(4 * _abi.WORD),  # offset of the dynamic `bytes` tail: right after the four head words
                _abi.dynamic_bytes(bytes(self.weights)),
            )
        )

    def hash(self) -> bytes:
        return double_hash(self.encode())


def row_leaf(layer: int, row: int, bias: int, weights: bytes) -> bytes:
    """The leaf hash of one weight row (docs/protocol.md 2.2)."""
    return WeightRow(layer, row, bias, weights).hash()


class WeightsTree:
    """The Merkle tree over every row of every layer of an exact expert; its root is the registered weightsRoot."""

    def __init__(self, layers: Sequence[IntLayer]) -> None:
        if not layers:
            raise ValueError("an expert has at least one layer")
        self._layers = list(layers)
        # value index of a row = offset of its layer + row number (layer-major order)
        self._offsets = np.concatenate(([0], np.cumsum([layer.out_dim for layer in self._layers])))
        self._tree = MerkleTree(
            [self.row(i, r).hash() for i, layer in enumerate(self._layers) for r in range(layer.out_dim)]
        )

    @property
    def root(self) -> bytes:
        return self._tree.root

    def row(self, layer: int, row: int) -> WeightRow:
        """The leaf contents of one row, as `FraudProof.prove` takes them."""
        self._check(layer, row)
        int_layer = self._layers[layer]
        return WeightRow(layer, row, int(int_layer.bias[row]), int_layer.weight[row].tobytes())

    def proof(self, layer: int, row: int) -> list[bytes]:
        """The Merkle proof of one row against `root`."""
        self._check(layer, row)
        return self._tree.proof(int(self._offsets[layer]) + row)

    def _check(self, layer: int, row: int) -> None:
        if not 0 <= layer < len(self._layers):
            raise IndexError(f"layer {layer} out of range for {len(self._layers)} layers")
        if not 0 <= row < self._layers[layer].out_dim:
            raise IndexError(f"row {row} out of range for layer {layer} with {self._layers[layer].out_dim} rows")


def weights_tree(layers: Sequence[IntLayer]) -> WeightsTree:
    """Builds the weights tree of an exact expert."""
    return WeightsTree(layers)
