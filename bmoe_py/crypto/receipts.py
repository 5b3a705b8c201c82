"""Signed receipts: the EIP-712 message an edge node signs for every request it answers (docs/protocol.md 4).

A receipt the node never committed is itself evidence: anyone can post it with `ResultLedger.postReceipt`, which
recovers the signer on chain from the same digest computed here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data

from .hashing import keccak256

__all__ = ["DOMAIN_NAME", "DOMAIN_VERSION", "Receipt", "receipt_digest", "recover_signer", "sign_receipt", "typed_data"]

DOMAIN_NAME = "B-MoE ResultLedger"
DOMAIN_VERSION = "1"

_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Receipt": [
        {"name": "taskId", "type": "uint256"},
        {"name": "node", "type": "address"},
        {"name": "modelId", "type": "uint256"},
        {"name": "expertIndex", "type": "uint32"},
        {"name": "expertVersion", "type": "uint32"},
        {"name": "requestId", "type": "bytes32"},
        {"name": "root", "type": "bytes32"},
        {"name": "tokenCount", "type": "uint64"},
    ],
}


@dataclass(frozen=True)
class Receipt:
    """The `IResultLedger.Receipt` struct: `root` is the Merkle root of the request's token leaves."""

    task_id: int
    node: str
    model_id: int
    expert_index: int
    expert_version: int
    request_id: bytes
    root: bytes
    token_count: int

    def as_tuple(self) -> tuple:
        """The struct as a contract call argument."""
        return (
            self.task_id,
            self.node,
            self.model_id,
            self.expert_index,
            self.expert_version,
            bytes(self.request_id),
            bytes(self.root),
            self.token_count,
        )


def typed_data(receipt: Receipt, chain_id: int, ledger_address: str) -> dict[str, Any]:
    """The full EIP-712 message (as `eth_signTypedData_v4` takes it) for a receipt on one ledger."""
    return {
        "types": _TYPES,
        "primaryType": "Receipt",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": str(ledger_address),
        },
        "message": {
            "taskId": receipt.task_id,
            "node": str(receipt.node),
            "modelId": receipt.model_id,
            "expertIndex": receipt.expert_index,
            "expertVersion": receipt.expert_version,
            "requestId": bytes(receipt.request_id),
            "root": bytes(receipt.root),
            "tokenCount": receipt.token_count,
        },
    }


def _signable(receipt: Receipt, chain_id: int, ledger_address: str) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(receipt, chain_id, ledger_address))


def receipt_digest(receipt: Receipt, chain_id: int, ledger_address: str) -> bytes:
    """keccak256(0x1901 || domainSeparator || structHash), what `ResultLedger.receiptDigest` returns."""
    message = _signable(receipt, chain_id, ledger_address)
    return keccak256(b"\x19" + message.version + message.header + message.body)


def sign_receipt(receipt: Receipt, private_key: bytes | str, chain_id: int, ledger_address: str) -> bytes:
    """The node's 65-byte signature (r || s || v, v in {27, 28}) over the receipt."""
    signed = Account.sign_message(_signable(receipt, chain_id, ledger_address), private_key)
    return bytes(signed.signature)


def recover_signer(receipt: Receipt, signature: bytes, chain_id: int, ledger_address: str) -> str:
    """The checksummed address that produced `signature` over the receipt."""
    return Account.recover_message(_signable(receipt, chain_id, ledger_address), signature=bytes(signature))
