"""Token and weight-row leaves are the ABI encodings of docs/protocol.md 2.1 and 2.2, and weights trees match OZ's."""
import random

import numpy as np
import pytest
from eth_abi import encode
from eth_utils import keccak

from bmoe_py.crypto import TokenLeaf, WeightRow, request_id, row_leaf, token_tree, vector_hash, weights_tree
from bmoe_py.crypto.merkle import verify
from bmoe_py.model.int8_ref import IntLayer
from oz_merkle import oz_trees

TOKEN_LEAF_TYPES = ["address", "uint256", "uint32", "uint32", "bytes32", "uint32", "bytes32", "bytes32"]
ROW_TYPES = ["uint32", "uint32", "int32", "bytes"]
NODE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"


def make_layers(seed, shapes=((5, 7), (3, 5))):
    rng = np.random.default_rng(seed)
    return [
        IntLayer(
            weight=rng.integers(-128, 128, size=(out_dim, in_dim), dtype=np.int8),
            bias=rng.integers(-(2**31), 2**31, size=out_dim, dtype=np.int32),
            multiplier=12345,
            shift=20,
            relu=i + 1 < len(shapes),
        )
        for i, (out_dim, in_dim) in enumerate(shapes)
    ]


def sample_leaf(**overrides):
    fields = dict(
        node=NODE, model_id=3, expert_index=2, expert_version=1, request_id=b"\x11" * 32, token_index=9,
        input_hash=b"\x22" * 32, output_hash=b"\x33" * 32,
    )
    fields.update(overrides)
    return TokenLeaf(**fields)


def test_token_leaf_encoding_is_abi_encode_of_the_leaf_struct():
    leaf = sample_leaf(model_id=2**256 - 1, expert_index=2**32 - 1)
    assert leaf.encode() == encode(TOKEN_LEAF_TYPES, list(leaf.as_tuple()))


def test_token_leaf_hash_is_the_double_keccak_of_its_encoding():
    leaf = sample_leaf()
    assert leaf.hash() == keccak(keccak(leaf.encode()))


def test_token_leaf_with_an_out_of_range_field_cannot_be_encoded():
    with pytest.raises(ValueError, match="uint32"):
        sample_leaf(token_index=2**32).encode()


def test_token_leaf_with_a_short_hash_cannot_be_encoded():
    with pytest.raises(ValueError, match="32 bytes"):
        sample_leaf(input_hash=b"\x01" * 31).encode()


def test_request_id_is_keccak_of_task_publisher_and_nonce():
    expected = keccak(encode(["uint256", "address", "uint256"], [7, NODE, 2**200]))
    assert request_id(7, NODE, 2**200) == expected


def test_int8_vectors_hash_as_one_twos_complement_byte_per_element():
    assert vector_hash(np.array([-1, 0, 127, -128], dtype=np.int8)) == keccak(bytes([0xFF, 0x00, 0x7F, 0x80]))


def test_float_vectors_hash_as_little_endian_float32_whatever_their_byte_order():
    big_endian = np.array([1.5, -2.0], dtype=">f4")
    assert vector_hash(big_endian) == keccak(bytes.fromhex("0000c03f000000c0"))


def test_vectors_of_other_types_cannot_be_hashed():
    with pytest.raises(TypeError):
        vector_hash(np.array([1, 2], dtype=np.int32))


def test_leaf_from_vectors_hashes_the_token_input_and_output():
    x, y = np.array([1, -2], dtype=np.int8), np.array([3], dtype=np.int8)
    leaf = TokenLeaf.from_vectors(NODE, 1, 0, 1, b"\x01" * 32, 4, x, y)
    assert (leaf.input_hash, leaf.output_hash) == (vector_hash(x), vector_hash(y))


def test_token_tree_proves_each_token_by_position():
    leaves = [sample_leaf(token_index=i) for i in range(6)]
    tree = token_tree(leaves)
    assert all(verify(tree.proof(i), tree.root, leaf.hash()) for i, leaf in enumerate(leaves))


@pytest.mark.parametrize("length", [1, 31, 32, 33, 64, 100])
def test_weight_row_encoding_is_abi_encode_of_layer_row_bias_weights(length):
    weights = random.Random(length).randbytes(length)
    row = WeightRow(layer=2, row=7, bias=-(2**31), weights=weights)
    assert row.encode() == encode(ROW_TYPES, [2, 7, -(2**31), weights])


def test_row_leaf_is_the_double_keccak_of_the_row_encoding():
    weights = bytes([0x80, 0x7F, 0x00])
    assert row_leaf(1, 2, 300, weights) == keccak(keccak(encode(ROW_TYPES, [1, 2, 300, weights])))


def test_weight_row_with_bias_beyond_int32_cannot_be_encoded():
    with pytest.raises(ValueError, match="int32"):
        WeightRow(0, 0, 2**31, b"\x00").encode()


def test_weights_tree_row_holds_the_layer_row_and_bias():
    layers = make_layers(1)
    row = weights_tree(layers).row(1, 2)
    assert row == WeightRow(1, 2, int(layers[1].bias[2]), layers[1].weight[2].tobytes())


def test_weights_tree_matches_openzeppelin_js_over_every_row():
    layers = make_layers(2)
    values = [
        [str(i), str(r), str(int(layer.bias[r])), "0x" + layer.weight[r].tobytes().hex()]
        for i, layer in enumerate(layers)
        for r in range(layer.out_dim)
    ]
    (js,) = oz_trees([(values, ROW_TYPES)])
    tree = weights_tree(layers)
    assert tree.root == js["root"]
    positions = [(i, r) for i, layer in enumerate(layers) for r in range(layer.out_dim)]
    assert [tree.proof(i, r) for i, r in positions] == js["proofs"]


def test_weights_tree_proof_of_each_row_verifies_against_the_root():
    layers = make_layers(3, shapes=((4, 6), (6, 4), (2, 6)))
    tree = weights_tree(layers)
    for i, layer in enumerate(layers):
        for r in range(layer.out_dim):
            assert verify(tree.proof(i, r), tree.root, tree.row(i, r).hash())


def test_weights_tree_has_no_row_beyond_a_layer():
    tree = weights_tree(make_layers(4))
    with pytest.raises(IndexError):
        tree.proof(1, 3)
    with pytest.raises(IndexError):
        tree.row(2, 0)
