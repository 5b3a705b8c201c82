"""The edge node's fast paths agree with the protocol's reference implementations, and its store keeps what it must."""
from __future__ import annotations

import numpy as np
import pytest
from eth_account import Account

from bmoe_py.crypto.leaves import TokenLeaf
from bmoe_py.crypto.receipts import Receipt, recover_signer, sign_receipt
from bmoe_py.edge.service import token_leaves
from bmoe_py.edge.signer import ReceiptSigner
from bmoe_py.edge.store import DuplicateRequest, EdgeStore

NODE = "0x" + "ab" * 20
LEDGER = "0x" + "cd" * 20
RID = bytes(range(32))


@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_token_leaves_equal_the_protocol_leaf_hashes(dtype):
    rng = np.random.default_rng(0)
    x = (rng.integers(-128, 128, (9, 6)) if dtype == np.int8 else rng.standard_normal((9, 6))).astype(dtype)
    y = x[:, :4].copy()
    expected = [TokenLeaf.from_vectors(NODE, 7, 3, 2, RID, i, a, b).hash() for i, (a, b) in enumerate(zip(x, y))]
    assert token_leaves(NODE, 7, 3, 2, RID, x, y) == expected


def test_receipt_signer_signs_exactly_as_sign_receipt():
    account = Account.create()
    key = "0x" + bytes(account.key).hex()
    receipt = Receipt(2**200, account.address, 9, 2**32 - 1, 1, RID, bytes(32), 2**64 - 1)
    signature = ReceiptSigner(key, 31337, LEDGER).sign(receipt)
    assert signature == sign_receipt(receipt, key, 31337, LEDGER)
    assert recover_signer(receipt, signature, 31337, LEDGER) == account.address


@pytest.fixture
def store(tmp_path):
    s = EdgeStore(tmp_path / "edge.sqlite3")
    yield s
    s.close()


def add(store: EdgeStore, rid: bytes, leaves: list[bytes], expert: int = 0) -> int:
    x = np.zeros((len(leaves), 4), np.int8)
    return store.add_request(rid, 1, expert, 1, x, x, b"r" * 32, b"s" * 65, leaves, 0)


def test_store_finds_a_leaf_by_its_token_position(store):
    leaves = [bytes([i]) * 32 for i in range(1, 5)]
    row = add(store, RID, leaves)
    found = store.find_leaf(leaves[2])
    assert found is not None and found[0].id == row and found[1] == 2
    assert store.find_leaf(b"\x09" * 32) is None


def test_store_ignores_a_match_that_straddles_two_leaves(store):
    add(store, RID, [b"\x01" * 32, b"\x02" * 32])
    assert store.find_leaf(b"\x01" * 16 + b"\x02" * 16) is None


def test_store_refuses_a_request_id_twice_for_one_expert_but_not_for_another(store):
    add(store, RID, [b"\x01" * 32])
    with pytest.raises(DuplicateRequest):
        add(store, RID, [b"\x02" * 32])
    add(store, RID, [b"\x03" * 32], expert=1)
    assert store.pending_tokens() == 2


def test_store_survives_reopening(tmp_path):
    first = EdgeStore(tmp_path / "edge.sqlite3")
    add(first, RID, [b"\x01" * 32, b"\x02" * 32])
    first.close()
    again = EdgeStore(tmp_path / "edge.sqlite3")
    assert again.pending_tokens() == 2 and again.has_request(0, RID)
    again.close()
