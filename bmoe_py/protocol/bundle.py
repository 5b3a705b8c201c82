"""The window bundle (docs/protocol.md 9): what an edge node pins to IPFS beside a commitment, so that anyone can
fetch the inputs and outputs it committed to, rebuild the leaves, check the root and re-execute a sample.

One bundle covers one commitment: one task, one expert version, the tokens of one or more requests in the order of
the commitment's Merkle tree. It is a canonical safetensors file (the writer of `bmoe_py.model.weights`), so the
same window always has the same bytes and CID:

- `inputs` [n, inDim] and `outputs` [n, outDim]: int8 for exact experts, float32 for float experts;
- `token_request` int32 [n]: index of each token's request in the metadata's `requests` list;
- `token_index` int32 [n]: each token's index within its request;
- metadata `bmoe`: `{"format": "bmoe-window/1", "node", "task_id", "model_id", "expert_index", "expert_version",
  "requests": ["0x<request id>", ...]}`.

Leaf i of the commitment is `TokenLeaf(node, model, expert, version, requests[token_request[i]], token_index[i],
keccak(inputs[i]), keccak(outputs[i]))` and the commitment's root is the tree over the leaves in bundle order.
A receipt (one request, tokens in order) posted with `postReceipt` gets a bundle of that request alone, whose root
is then the receipt's root.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..crypto.leaves import TokenLeaf, token_tree, vector_hash
from ..crypto.merkle import MerkleTree

__all__ = ["BUNDLE_FORMAT", "BundleError", "BundleToken", "WindowBundle"]

BUNDLE_FORMAT = "bmoe-window/1"


class BundleError(ValueError):
    """Bytes that are not a well-formed window bundle, or a bundle that does not match its commitment."""


@dataclass(frozen=True)
class BundleToken:
    """One committed token with everything a challenge needs: its leaf, its proof and its input."""

    position: int
    request_id: bytes
    token_index: int
    input: np.ndarray
    output: np.ndarray
    leaf: TokenLeaf
    proof: list[bytes]


@dataclass(frozen=True, eq=False)
class WindowBundle:
    node: str
    task_id: int
    model_id: int
    expert_index: int
    expert_version: int
    requests: tuple[bytes, ...]
    token_request: np.ndarray  # int32 [n]
    token_index: np.ndarray  # int32 [n]
    inputs: np.ndarray  # [n, inDim]
    outputs: np.ndarray  # [n, outDim]

    def __post_init__(self) -> None:
        n = self.inputs.shape[0] if self.inputs.ndim == 2 else -1
        if n <= 0 or self.outputs.ndim != 2 or self.outputs.shape[0] != n:
            raise BundleError(f"inputs {list(self.inputs.shape)} and outputs {list(self.outputs.shape)} must be [n, dim], n > 0")
        if self.token_request.shape != (n,) or self.token_index.shape != (n,):
            raise BundleError(f"token_request and token_index must have {n} entries")
        if self.inputs.dtype != self.outputs.dtype or self.inputs.dtype not in (np.int8, np.float32):
            raise BundleError(f"inputs and outputs must both be int8 or both float32, not {self.inputs.dtype}/{self.outputs.dtype}")
        if n and (self.token_request.min() < 0 or self.token_request.max() >= len(self.requests)):
            raise BundleError(f"token_request must index the {len(self.requests)} requests")
        if any(len(r) != 32 for r in self.requests):
            raise BundleError("request ids are 32 bytes")

    @classmethod
    def of_requests(
        cls, node: str, task_id: int, model_id: int, expert_index: int, expert_version: int,
        requests: list[tuple[bytes, np.ndarray, np.ndarray]],
    ) -> WindowBundle:  # fmt: skip
        """The bundle of whole requests `(request_id, inputs [m, inDim], outputs [m, outDim])`, tokens in order."""
        if not requests:
            raise BundleError("a bundle holds at least one request")
        return cls(
            node, task_id, model_id, expert_index, expert_version,
            tuple(bytes(r) for r, _, _ in requests),
            np.concatenate([np.full(len(x), i, np.int32) for i, (_, x, _) in enumerate(requests)]),
            np.concatenate([np.arange(len(x), dtype=np.int32) for _, x, _ in requests]),
            np.concatenate([np.asarray(x) for _, x, _ in requests]),
            np.concatenate([np.asarray(y) for _, _, y in requests]),
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def exact(self) -> bool:
        return self.inputs.dtype == np.int8

    def leaf(self, position: int) -> TokenLeaf:
        return TokenLeaf.from_vectors(
            self.node, self.model_id, self.expert_index, self.expert_version,
            self.requests[int(self.token_request[position])], int(self.token_index[position]),
            self.inputs[position], self.outputs[position],
        )  # fmt: skip

    @cached_property
    def tree(self) -> MerkleTree:
        return token_tree([self.leaf(i) for i in range(len(self))])

    @property
    def root(self) -> bytes:
        return self.tree.root

    def token(self, position: int) -> BundleToken:
        if not 0 <= position < len(self):
            raise IndexError(f"position {position} out of range for a bundle of {len(self)} tokens")
        return BundleToken(
            position, self.requests[int(self.token_request[position])], int(self.token_index[position]),
            self.inputs[position], self.outputs[position], self.leaf(position), self.tree.proof(position),
        )  # fmt: skip

    def encode(self) -> bytes:
        from ..model.weights import encode_safetensors

        metadata = {
            "format": BUNDLE_FORMAT,
            "node": self.node,
            "task_id": self.task_id,
            "model_id": self.model_id,
            "expert_index": self.expert_index,
            "expert_version": self.expert_version,
            "requests": ["0x" + r.hex() for r in self.requests],
        }
        tensors = {
            "inputs": self.inputs,
            "outputs": self.outputs,
            "token_request": self.token_request.astype(np.int32),
            "token_index": self.token_index.astype(np.int32),
        }
        return encode_safetensors(tensors, metadata)

    @classmethod
    def decode(cls, data: bytes) -> WindowBundle:
        from ..model.weights import WeightsError, decode_safetensors

        try:
            tensors, meta = decode_safetensors(data)
        except WeightsError as exc:
            raise BundleError(f"not a window bundle: {exc}") from None
        if meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"expected a {BUNDLE_FORMAT} file, got format {meta.get('format')!r}")
        try:
            requests = tuple(bytes.fromhex(r.removeprefix("0x")) for r in meta["requests"])
            return cls(
                str(meta["node"]), int(meta["task_id"]), int(meta["model_id"]), int(meta["expert_index"]),
                int(meta["expert_version"]), requests, tensors["token_request"], tensors["token_index"],
                tensors["inputs"], tensors["outputs"],
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, BundleError):
                raise
            raise BundleError(f"malformed window bundle: {exc!r}") from None
