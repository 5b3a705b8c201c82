"""Python (bmoe_py.crypto) and Solidity compute the same bytes: Merkle roots and proofs (OpenZeppelin MerkleProof),
token and weight-row leaves, receipt digests and signers, commitment ids."""
import random

import numpy as np
import pytest
from brownie import MerkleHarness, chain
from eth_account import Account

from bmoe_py.crypto import (
    Commitment,
    MerkleTree,
    Receipt,
    TokenLeaf,
    WeightRow,
    receipt_digest,
    recover_signer,
    sign_receipt,
    token_tree,
    weights_tree,
)
from bmoe_py.model.int8_ref import IntLayer
from ledger_setup import BUNDLE_CID, ETH, deploy_core, register_model

UINT32_MAX, UINT64_MAX, UINT256_MAX = 2**32 - 1, 2**64 - 1, 2**256 - 1


@pytest.fixture(scope="module")
def harness(accounts):
    return MerkleHarness.deploy({"from": accounts[0]})


@pytest.fixture(scope="module")
def core(accounts):
    return deploy_core(accounts[0], [accounts[8]])


@pytest.fixture(scope="module")
def ledger(core):
    return core.ledger


def hashes(count, seed):
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


def random_token_leaf(rng, token_index=None):
    return TokenLeaf(
        node="0x" + rng.randbytes(20).hex(),
        model_id=rng.choice([1, rng.randrange(2**256), UINT256_MAX]),
        expert_index=rng.choice([0, rng.randrange(2**32), UINT32_MAX]),
        expert_version=rng.choice([1, rng.randrange(2**32), UINT32_MAX]),
        request_id=rng.randbytes(32),
        token_index=rng.randrange(2**32) if token_index is None else token_index,
        input_hash=rng.randbytes(32),
        output_hash=rng.randbytes(32),
    )


def as_hex(value):
    return "0x" + value.hex()


# ---------------------------------------------------------------- Merkle trees


@pytest.mark.parametrize("size", range(1, 18))
def test_every_python_proof_leads_to_the_python_root_on_chain(harness, size):
    leaves = hashes(size, seed=size)
    tree = MerkleTree(leaves)
    for index, leaf in enumerate(leaves):
        proof = tree.proof(index)
        assert harness.processProof(proof, leaf) == as_hex(tree.root)
        assert harness.verify(proof, tree.root, leaf)


@pytest.mark.parametrize("size", [100, 1_000, 4_096, 65_536])
def test_sampled_proofs_of_large_python_trees_verify_on_chain(harness, size):
    leaves = hashes(size, seed=size)
    tree = MerkleTree(leaves)
    for index in random.Random(size).sample(range(size), 4):
        assert harness.verify(tree.proof(index), tree.root, leaves[index])


def test_proof_with_a_tampered_sibling_fails_on_chain(harness):
    leaves = hashes(9, seed=99)
    tree = MerkleTree(leaves)
    proof = tree.proof(5)
    proof[2] = bytes(32)
    assert not harness.verify(proof, tree.root, leaves[5])


def test_proof_of_one_leaf_does_not_verify_another_on_chain(harness):
    leaves = hashes(9, seed=98)
    tree = MerkleTree(leaves)
    assert not harness.verify(tree.proof(5), tree.root, leaves[6])


# ---------------------------------------------------------------- leaves


def test_token_leaf_hash_agrees_with_the_ledger(ledger):
    rng = random.Random(1)
    for _ in range(6):
        leaf = random_token_leaf(rng)
        assert ledger.leafHash(leaf.as_tuple()) == as_hex(leaf.hash())


def test_token_tree_proofs_verify_on_chain_for_ledger_leaf_hashes(ledger, harness):
    rng = random.Random(2)
    leaves = [random_token_leaf(rng, token_index=i) for i in range(11)]
    tree = token_tree(leaves)
    for index, leaf in enumerate(leaves):
        assert harness.verify(tree.proof(index), tree.root, ledger.leafHash(leaf.as_tuple()))


@pytest.mark.parametrize("length", [1, 31, 32, 33, 4096])
def test_weight_row_leaf_agrees_with_solidity(harness, length):
    rng = random.Random(length)
    row = WeightRow(rng.randrange(16), rng.randrange(4096), rng.choice([-(2**31), -1, 2**31 - 1]), rng.randbytes(length))
    assert harness.rowLeaf(row.layer, row.row, row.bias, row.weights) == as_hex(row.hash())


def test_weights_tree_rows_verify_on_chain(harness):
    rng = np.random.default_rng(3)
    layers = [
        IntLayer(rng.integers(-128, 128, (6, 5), dtype=np.int8), rng.integers(-1000, 1000, 6, dtype=np.int32),
                 3, 4, True),
        IntLayer(rng.integers(-128, 128, (3, 6), dtype=np.int8), rng.integers(-1000, 1000, 3, dtype=np.int32),
                 5, 6, False),
    ]
    tree = weights_tree(layers)
    for layer, int_layer in enumerate(layers):
        for r in range(int_layer.out_dim):
            row = tree.row(layer, r)
            leaf = harness.rowLeaf(row.layer, row.row, row.bias, row.weights)
            assert harness.verify(tree.proof(layer, r), tree.root, leaf)


# ---------------------------------------------------------------- receipts and commitments


def test_receipt_digest_agrees_with_the_ledger(ledger):
    rng = random.Random(4)
    for _ in range(4):
        receipt = Receipt(rng.randrange(2**256), "0x" + rng.randbytes(20).hex(), rng.randrange(2**256),
                          rng.randrange(2**32), rng.randrange(2**32), rng.randbytes(32), rng.randbytes(32),
                          rng.randrange(2**64))
        assert ledger.receiptDigest(receipt.as_tuple()) == as_hex(receipt_digest(receipt, chain.id, ledger.address))


def test_ledger_recovers_the_signer_of_a_python_signed_receipt(accounts, core, ledger):
    publisher = accounts[1]
    key = Account.create().key
    node = accounts.add(key)
    accounts[0].transfer(node, ETH)
    core.staking.deposit({"from": node, "value": ETH})
    model_id = register_model(core.registry, publisher)
    task_id = ledger.createTask(model_id, 1, {"from": publisher, "value": 1}).return_value
    receipt = Receipt(task_id, node.address, model_id, 0, 1, b"\x0e" * 32, b"\x0f" * 32, 64)
    signature = sign_receipt(receipt, key, chain.id, ledger.address)

    tx = ledger.postReceipt(receipt.as_tuple(), signature, BUNDLE_CID, {"from": publisher})

    assert recover_signer(receipt, signature, chain.id, ledger.address) == node.address
    assert Commitment.from_event(tx.events["CommitmentPosted"]["commitment"]).node == node.address
    assert tx.events["ReceiptPosted"]["digest"] == as_hex(receipt_digest(receipt, chain.id, ledger.address))


def test_commitment_id_agrees_with_the_ledger(ledger):
    rng = random.Random(5)
    for from_receipt in (False, True):
        commitment = Commitment(rng.randrange(2**256), "0x" + rng.randbytes(20).hex(), UINT32_MAX,
                                rng.randrange(2**32), UINT64_MAX, rng.randrange(2**64), rng.randbytes(32), from_receipt)
        assert ledger.commitmentId(commitment.as_tuple()) == as_hex(commitment.id())
