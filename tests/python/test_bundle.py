"""Window bundles (docs/protocol.md 9): canonical bytes, leaves and root exactly as a commitment needs them."""
import numpy as np
import pytest

from bmoe_py.crypto import TokenLeaf, token_tree, verify
from bmoe_py.protocol.bundle import BundleError, WindowBundle

NODE = "0x" + "ab" * 20
R1, R2 = b"\x01" * 32, b"\x02" * 32


def two_requests(dtype=np.int8) -> WindowBundle:
    rng = np.random.default_rng(0)
    x1, x2 = rng.integers(-128, 128, (3, 8)).astype(dtype), rng.integers(-128, 128, (2, 8)).astype(dtype)
    y1, y2 = rng.integers(-128, 128, (3, 4)).astype(dtype), rng.integers(-128, 128, (2, 4)).astype(dtype)
    return WindowBundle.of_requests(NODE, 5, 9, 2, 1, [(R1, x1, y1), (R2, x2, y2)])


def test_bundle_round_trips_to_the_same_bytes_and_root():
    bundle = two_requests()
    data = bundle.encode()
    decoded = WindowBundle.decode(data)
    assert decoded.encode() == data
    assert decoded.root == bundle.root and len(decoded) == 5


def test_leaves_follow_bundle_order_with_token_indices_per_request():
    bundle = two_requests()
    assert [(bundle.token(i).request_id, bundle.token(i).token_index) for i in range(5)] == [
        (R1, 0), (R1, 1), (R1, 2), (R2, 0), (R2, 1),
    ]  # fmt: skip
    assert bundle.root == token_tree([bundle.leaf(i) for i in range(5)]).root


def test_a_one_request_bundle_has_the_receipt_root():
    rng = np.random.default_rng(1)
    x, y = rng.integers(-128, 128, (4, 8)).astype(np.int8), rng.integers(-128, 128, (4, 4)).astype(np.int8)
    bundle = WindowBundle.of_requests(NODE, 5, 9, 2, 1, [(R1, x, y)])
    leaves = [TokenLeaf.from_vectors(NODE, 9, 2, 1, R1, i, x[i], y[i]) for i in range(4)]
    assert bundle.root == token_tree(leaves).root


def test_every_token_proof_verifies_against_the_root():
    bundle = two_requests(np.float32)
    for i in range(len(bundle)):
        token = bundle.token(i)
        assert verify(token.proof, bundle.root, token.leaf.hash())


def test_other_files_are_refused():
    with pytest.raises(BundleError, match="not a window bundle"):
        WindowBundle.decode(b"not safetensors")
    from bmoe_py.model.weights import encode_safetensors

    with pytest.raises(BundleError, match="bmoe-window/1"):
        WindowBundle.decode(encode_safetensors({"x": np.zeros(2, np.int8)}, {"format": "bmoe-expert-int8/1"}))


def test_mixed_dtypes_are_refused():
    with pytest.raises(BundleError, match="must both be int8 or both float32"):
        WindowBundle.of_requests(NODE, 1, 1, 0, 1, [(R1, np.zeros((1, 2), np.int8), np.zeros((1, 2), np.float32))])


def test_token_request_must_index_a_request():
    bundle = two_requests()
    with pytest.raises(BundleError, match="index the 1 requests"):
        WindowBundle(NODE, 5, 9, 2, 1, (R1,), bundle.token_request, bundle.token_index, bundle.inputs, bundle.outputs)
