"""The binary frames of the edge node's HTTP API (docs/protocol.md 8): round trips, and clear refusals of
everything malformed before anything large is allocated."""
import json
import struct

import numpy as np
import pytest
from eth_account import Account

from bmoe_py.crypto import Receipt, recover_signer, sign_receipt
from bmoe_py.protocol.wire import (
    MAX_TOKENS_PER_REQUEST,
    ForwardRequest,
    ForwardResponse,
    FrameError,
    decode_frame,
    encode_frame,
)

REQUEST_ID = bytes(range(32))


def request(tokens: np.ndarray) -> ForwardRequest:
    return ForwardRequest(task_id=7, model_id=3, expert_index=2, expert_version=1, request_id=REQUEST_ID, tokens=tokens)


def test_int8_request_round_trips_bit_for_bit():
    tokens = np.random.default_rng(0).integers(-128, 128, size=(1024, 32), dtype=np.int8)
    decoded = ForwardRequest.decode(request(tokens).encode())
    assert (decoded.task_id, decoded.model_id, decoded.expert_index, decoded.expert_version) == (7, 3, 2, 1)
    assert decoded.request_id == REQUEST_ID
    assert decoded.tokens.dtype == np.int8 and np.array_equal(decoded.tokens, tokens)


def test_float32_tokens_round_trip():
    tokens = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    assert np.array_equal(ForwardRequest.decode(request(tokens).encode()).tokens, tokens)


def test_tokens_are_sent_as_raw_bytes_not_json():
    tokens = np.zeros((1024, 32), np.int8)
    assert len(request(tokens).encode()) < 1024 * 32 + 512


def test_response_round_trips_and_its_signature_recovers_the_node():
    key = Account.create()
    receipt = Receipt(7, key.address, 3, 2, 1, REQUEST_ID, b"\x11" * 32, 4)
    signature = sign_receipt(receipt, key.key, 31337, "0x" + "22" * 20)
    outputs = np.arange(32, dtype=np.int8).reshape(4, 8)
    decoded = ForwardResponse.decode(ForwardResponse(receipt, signature, outputs).encode())
    assert decoded.receipt == receipt and np.array_equal(decoded.outputs, outputs)
    assert recover_signer(decoded.receipt, decoded.signature, 31337, "0x" + "22" * 20) == key.address


def test_response_whose_receipt_counts_other_tokens_is_refused():
    receipt = Receipt(7, "0x" + "33" * 20, 3, 2, 1, REQUEST_ID, b"\x11" * 32, 5)
    with pytest.raises(FrameError, match="covers 5 tokens"):
        ForwardResponse.decode(ForwardResponse(receipt, b"\x00" * 65, np.zeros((4, 8), np.int8)).encode())


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "shorter than"),
        (b"HTTP/1.1 200 OK\r\n", "not a B-MoE frame"),
        (struct.pack(">4sBI", b"BMOE", 9, 2) + b"{}", "version 9"),
        (struct.pack(">4sBI", b"BMOE", 1, 1 << 30), "header length"),
        (struct.pack(">4sBI", b"BMOE", 1, 3) + b"{x}", "not JSON"),
        (struct.pack(">4sBI", b"BMOE", 1, 2) + b"[]", '"tensors" list'),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(data, message):
    with pytest.raises(FrameError, match=message):
        decode_frame(data)


def raw_frame(tensors: list[dict], body: bytes) -> bytes:
    """A frame whose header says whatever a test wants, whatever the body holds."""
    header = json.dumps({"tensors": tensors}).encode()
    return struct.pack(">4sBI", b"BMOE", 1, len(header)) + header + body


def test_a_tensor_longer_than_the_frame_is_refused_before_allocation():
    forged = raw_frame([{"name": "tokens", "dtype": "int8", "shape": [999999, 999999]}], b"\x00" * 4)
    with pytest.raises(FrameError, match="needs"):
        decode_frame(forged)


def test_trailing_bytes_are_refused():
    with pytest.raises(FrameError, match="follow the last tensor"):
        decode_frame(encode_frame({}, {"tokens": np.zeros((2, 2), np.int8)}) + b"\x00")


def test_unknown_dtype_is_refused():
    frame = raw_frame([{"name": "tokens", "dtype": "int64", "shape": [2, 2]}], b"\x00" * 32)
    with pytest.raises(FrameError, match="dtype"):
        decode_frame(frame)


def test_oversized_frame_is_refused_by_length_alone():
    with pytest.raises(FrameError, match="exceeds the limit"):
        decode_frame(b"\x00" * 101, max_bytes=100)


def test_request_must_carry_a_token_matrix():
    with pytest.raises(FrameError, match=r"\[n, inDim\]"):
        ForwardRequest.decode(request(np.zeros(8, np.int8)).encode())
    with pytest.raises(FrameError, match="non-empty"):
        ForwardRequest.decode(request(np.zeros((0, 8), np.int8)).encode())


def test_request_with_too_many_tokens_is_refused():
    with pytest.raises(FrameError, match="exceed the limit"):
        ForwardRequest.decode(request(np.zeros((MAX_TOKENS_PER_REQUEST + 1, 1), np.int8)).encode())


@pytest.mark.parametrize("field, value", [("task_id", -1), ("expert_index", 1 << 32), ("request_id", "0x12"), ("model_id", "3")])
def test_request_header_fields_are_validated(field, value):
    frame = encode_frame(
        {"task_id": 1, "model_id": 1, "expert_index": 0, "expert_version": 0, "request_id": "0x" + "00" * 32, field: value},
        {"tokens": np.zeros((1, 4), np.int8)},
    )
    with pytest.raises(FrameError, match=field):
        ForwardRequest.decode(frame)
