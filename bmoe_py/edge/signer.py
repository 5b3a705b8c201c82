"""Signing receipts fast: one EIP-712 signature per forward call is on the hot path of every request.

`bmoe_py.crypto.sign_receipt` goes through eth_account's generic typed-data encoder (about 25 ms a receipt). The
Receipt struct has only static fields, so its EIP-712 hash is keccak(typeHash ++ eight ABI words); with the domain
separator computed once, signing is one keccak and one ECDSA signature (about 1 ms). At start the signer checks that
its digest and signature equal the generic implementation's, so the two cannot drift apart silently.
"""
from __future__ import annotations

from eth_account import Account

from ..crypto.hashing import keccak256
from ..crypto.receipts import Receipt, receipt_digest, sign_receipt

__all__ = ["ReceiptSigner"]

_DOMAIN_TYPE = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_RECEIPT_TYPE = keccak256(
    b"Receipt(uint256 taskId,address node,uint256 modelId,uint32 expertIndex,uint32 expertVersion,bytes32 requestId,"
    b"bytes32 root,uint64 tokenCount)"
)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(value: str) -> bytes:
    return bytes(12) + bytes.fromhex(value[2:])


class ReceiptSigner:
    def __init__(self, private_key: str, chain_id: int, ledger: str) -> None:
        from ..crypto.receipts import DOMAIN_NAME, DOMAIN_VERSION

        self._key = private_key
        self.address = Account.from_key(private_key).address
        self._prefix = b"\x19\x01" + keccak256(
            _DOMAIN_TYPE + keccak256(DOMAIN_NAME.encode()) + keccak256(DOMAIN_VERSION.encode()) + _word(chain_id)
            + _address(ledger)
        )  # fmt: skip
        probe = Receipt(1, self.address, 2, 3, 4, bytes(range(32)), bytes(range(32, 64)), 5)
        if self.digest(probe) != receipt_digest(probe, chain_id, ledger) or self.sign(probe) != sign_receipt(
            probe, private_key, chain_id, ledger
        ):
            raise AssertionError("the fast receipt signer disagrees with bmoe_py.crypto.receipts")

    def digest(self, r: Receipt) -> bytes:
        struct = keccak256(
            _RECEIPT_TYPE + _word(r.task_id) + _address(r.node) + _word(r.model_id) + _word(r.expert_index)
            + _word(r.expert_version) + bytes(r.request_id) + bytes(r.root) + _word(r.token_count)
        )  # fmt: skip
        return keccak256(self._prefix + struct)

    def sign(self, receipt: Receipt) -> bytes:
        """65 bytes r || s || v (v in {27, 28}), as `sign_receipt` gives."""
        return bytes(Account.unsafe_sign_hash(self.digest(receipt), self._key).signature)
