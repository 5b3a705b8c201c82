"""bmoe_py.crypto.merkle builds exactly the trees of @openzeppelin/merkle-tree's StandardMerkleTree."""
import random
import time

import pytest
from eth_utils import keccak

from bmoe_py.crypto import TokenLeaf
from bmoe_py.crypto.merkle import MerkleTree, double_hash, hash_pair, process_proof, verify
from oz_merkle import oz_trees

TOKEN_LEAF_TYPES = ["address", "uint256", "uint32", "uint32", "bytes32", "uint32", "bytes32", "bytes32"]


def random_hashes(count, seed):
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


def random_token_leaves(count, seed):
    rng = random.Random(seed)
    node = "0x" + rng.randbytes(20).hex()
    request = rng.randbytes(32)
    return [
        TokenLeaf(node, rng.randrange(1, 2**256), rng.randrange(2**32), rng.randrange(1, 2**32), request, i,
                  rng.randbytes(32), rng.randbytes(32))
        for i in range(count)
    ]


def js_values(leaves):
    return [
        [leaf.node, str(leaf.model_id), str(leaf.expert_index), str(leaf.expert_version), "0x" + leaf.request_id.hex(),
         str(leaf.token_index), "0x" + leaf.input_hash.hex(), "0x" + leaf.output_hash.hex()]
        for leaf in leaves
    ]


def test_double_hash_is_keccak_of_keccak():
    assert double_hash(b"abc") == keccak(keccak(b"abc"))


def test_pairs_are_hashed_in_ascending_order():
    low, high = b"\x01" * 32, b"\xf0" * 32
    assert hash_pair(low, high) == hash_pair(high, low) == keccak(low + high)


def test_one_leaf_tree_has_the_leaf_as_root_and_an_empty_proof():
    leaf = random_hashes(1, 0)[0]
    tree = MerkleTree([leaf])
    assert tree.root == leaf
    assert tree.proof(0) == []
    assert verify([], leaf, leaf)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 7, 8, 9, 16, 17])
def test_every_proof_leads_to_the_root(count):
    leaves = random_hashes(count, count)
    tree = MerkleTree(leaves)
    for index, leaf in enumerate(leaves):
        proof = tree.proof(index)
        assert process_proof(leaf, proof) == tree.root
        assert tree.verify(index, proof)


def test_roots_and_proofs_match_openzeppelin_js_for_token_leaves():
    sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 64, 100]
    cases = [random_token_leaves(size, seed=size) for size in sizes]
    expected = oz_trees([(js_values(leaves), TOKEN_LEAF_TYPES) for leaves in cases])
    for leaves, js in zip(cases, expected):
        tree = MerkleTree.of(leaf.encode() for leaf in leaves)
        assert tree.root == js["root"], f"root differs for {len(leaves)} leaves"
        assert [tree.proof(i) for i in range(len(leaves))] == js["proofs"], f"proofs differ for {len(leaves)} leaves"


def test_repeated_leaves_match_openzeppelin_js():
    distinct = random_token_leaves(3, seed=42)
    leaves = [distinct[0], distinct[1], distinct[0], distinct[2], distinct[0]]
    (js,) = oz_trees([(js_values(leaves), TOKEN_LEAF_TYPES)])
    tree = MerkleTree.of(leaf.encode() for leaf in leaves)
    assert tree.root == js["root"]
    assert [tree.proof(i) for i in range(len(leaves))] == js["proofs"]


def test_root_does_not_depend_on_leaf_order():
    leaves = random_hashes(11, 3)
    shuffled = leaves[:]
    random.Random(4).shuffle(shuffled)
    assert MerkleTree(leaves).root == MerkleTree(shuffled).root


def test_proof_by_leaf_hash_equals_proof_by_index():
    leaves = random_hashes(10, 5)
    tree = MerkleTree(leaves)
    assert tree.proof(leaves[6]) == tree.proof(6)
    assert tree.index_of(leaves[6]) == 6
    assert tree.leaf(6) == leaves[6]


def test_proof_of_another_leaf_does_not_verify():
    leaves = random_hashes(9, 6)
    tree = MerkleTree(leaves)
    assert not verify(tree.proof(2), tree.root, leaves[3])


def test_tampered_proof_does_not_verify():
    leaves = random_hashes(9, 7)
    tree = MerkleTree(leaves)
    proof = tree.proof(4)
    proof[1] = bytes(32)
    assert not tree.verify(4, proof)


def test_leaf_not_in_tree_has_no_proof():
    tree = MerkleTree(random_hashes(4, 8))
    with pytest.raises(ValueError, match="not in the tree"):
        tree.proof(b"\x00" * 32)


def test_index_out_of_range_has_no_proof():
    tree = MerkleTree(random_hashes(4, 9))
    with pytest.raises(IndexError):
        tree.proof(4)


def test_empty_tree_is_rejected():
    with pytest.raises(ValueError, match="at least one leaf"):
        MerkleTree([])


def test_leaf_that_is_not_32_bytes_is_rejected():
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree([b"\x01" * 31])


def test_65536_leaves_build_in_well_under_a_few_seconds():
    leaves = random_hashes(65_536, 10)
    start = time.perf_counter()
    tree = MerkleTree(leaves)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.5, f"building took {elapsed:.2f} s"
    assert len(tree.proof(12_345)) == 16
    assert tree.verify(12_345, tree.proof(12_345))
