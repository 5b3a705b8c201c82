"""Receipts are EIP-712 messages in the "B-MoE ResultLedger" domain, signed by the node's key."""
from dataclasses import replace

import pytest
from eth_abi import encode
from eth_account import Account
from eth_keys import keys
from eth_utils import keccak

from bmoe_py.crypto import Receipt, receipt_digest, recover_signer, sign_receipt

CHAIN_ID = 1337
LEDGER = "0xCafac3dD18aC6c6e92c921884f9E4176737C052c"
NODE_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
NODE = Account.from_key(NODE_KEY).address

RECEIPT_TYPE = (
    "Receipt(uint256 taskId,address node,uint256 modelId,uint32 expertIndex,uint32 expertVersion,"
    "bytes32 requestId,bytes32 root,uint64 tokenCount)"
)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"


def sample_receipt(**overrides):
    fields = dict(
        task_id=5, node=NODE, model_id=2, expert_index=3, expert_version=1, request_id=b"\xaa" * 32,
        root=b"\xbb" * 32, token_count=4096,
    )
    fields.update(overrides)
    return Receipt(**fields)


def manual_digest(receipt, chain_id, ledger):
    """EIP-712 written out from the standard, independently of eth-account."""
    domain = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [keccak(text=DOMAIN_TYPE), keccak(text="B-MoE ResultLedger"), keccak(text="1"), chain_id, ledger],
        )
    )
    struct = keccak(
        encode(
            ["bytes32", "uint256", "address", "uint256", "uint32", "uint32", "bytes32", "bytes32", "uint64"],
            [keccak(text=RECEIPT_TYPE), *receipt.as_tuple()],
        )
    )
    return keccak(b"\x19\x01" + domain + struct)


def test_digest_follows_eip712_with_the_ledger_domain():
    receipt = sample_receipt()
    assert receipt_digest(receipt, CHAIN_ID, LEDGER) == manual_digest(receipt, CHAIN_ID, LEDGER)


def test_signature_recovers_the_node():
    receipt = sample_receipt()
    signature = sign_receipt(receipt, NODE_KEY, CHAIN_ID, LEDGER)
    assert recover_signer(receipt, signature, CHAIN_ID, LEDGER) == NODE


def test_signature_is_65_bytes_with_v_27_or_28():
    signature = sign_receipt(sample_receipt(), NODE_KEY, CHAIN_ID, LEDGER)
    assert len(signature) == 65 and signature[64] in (27, 28)


def test_signature_signs_the_digest():
    receipt = sample_receipt()
    signature = sign_receipt(receipt, NODE_KEY, CHAIN_ID, LEDGER)
    ecdsa = keys.Signature(signature[:64] + bytes([signature[64] - 27]))
    public_key = ecdsa.recover_public_key_from_msg_hash(receipt_digest(receipt, CHAIN_ID, LEDGER))
    assert public_key.to_checksum_address() == NODE


@pytest.mark.parametrize(
    "change", [dict(task_id=6), dict(token_count=4095), dict(root=b"\xbc" * 32), dict(expert_version=2)]
)
def test_signature_does_not_carry_over_to_a_changed_receipt(change):
    receipt = sample_receipt()
    signature = sign_receipt(receipt, NODE_KEY, CHAIN_ID, LEDGER)
    assert recover_signer(replace(receipt, **change), signature, CHAIN_ID, LEDGER) != NODE


def test_signature_does_not_carry_over_to_another_chain_or_ledger():
    receipt = sample_receipt()
    signature = sign_receipt(receipt, NODE_KEY, CHAIN_ID, LEDGER)
    assert recover_signer(receipt, signature, CHAIN_ID + 1, LEDGER) != NODE
    assert recover_signer(receipt, signature, CHAIN_ID, "0x" + "11" * 20) != NODE
