"""Window commitments as the ledger identifies them (docs/protocol.md 4).

The ledger stores only a status slot per commitment, keyed by `keccak256(abi.encode(commitment))`: every later call
(finalize, challenge) passes the full struct back, which the caller rebuilds from the `CommitmentPosted` event.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _abi
from .hashing import keccak256

__all__ = ["Commitment"]


@dataclass(frozen=True)
class Commitment:
    """The `IResultLedger.Commitment` struct."""

    task_id: int
    node: str
    expert_index: int
    expert_version: int
    token_count: int
    posted_at: int
    root: bytes
    from_receipt: bool = False

    @classmethod
    def from_event(cls, fields: Mapping[str, Any] | Sequence[Any]) -> Commitment:
        """Rebuilds the struct from the `commitment` argument of a `CommitmentPosted` event (a dict or a tuple)."""
        if isinstance(fields, Mapping):
            fields = [
                fields[name]
                for name in (
                    "taskId",
                    "node",
                    "expertIndex",
                    "expertVersion",
                    "tokenCount",
                    "postedAt",
                    "root",
                    "fromReceipt",
                )
            ]
        task_id, node, expert_index, expert_version, token_count, posted_at, root, from_receipt = fields
        root = bytes.fromhex(root[2:]) if isinstance(root, str) else bytes(root)
        return cls(
            int(task_id), str(node), int(expert_index), int(expert_version), int(token_count), int(posted_at), root,
            bool(from_receipt),
        )

    def encode(self) -> bytes:
        """abi.encode(Commitment): the struct has only static fields, so this is its eight words."""
        return b"".join(
            (
                _abi.uint(self.task_id),
                _abi.address(self.node),
                _abi.uint(self.expert_index, 32),
                _abi.uint(self.expert_version, 32),
                _abi.uint(self.token_count, 64),
                _abi.uint(self.posted_at, 64),
                _abi.bytes32(self.root),
                _abi.uint(int(self.from_receipt), 8),
            )
        )

    def id(self) -> bytes:
        """keccak256(abi.encode(commitment)), the key of the commitment's state on chain."""
        return keccak256(self.encode())

    def as_tuple(self) -> tuple:
        """The struct as a contract call argument."""
        return (
            self.task_id,
            self.node,
            self.expert_index,
            self.expert_version,
            self.token_count,
            self.posted_at,
            bytes(self.root),
            self.from_receipt,
        )
