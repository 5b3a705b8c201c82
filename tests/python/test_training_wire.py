"""Messages of the training API (docs/protocol.md 11.2): they survive a round trip exactly, and a malformed one is a
FrameError (the node's 400) before any work."""
import numpy as np
import pytest

from bmoe_py.protocol.training_wire import (
    StepStats,
    TrainBackwardRequest,
    TrainBackwardResponse,
    TrainFinishRequest,
    TrainFinishResponse,
    TrainForwardRequest,
    TrainForwardResponse,
)
from bmoe_py.protocol.wire import FrameError, encode_frame

NODE = "0x" + "ab" * 20
IDS = {"task_id": 7, "model_id": 1, "expert_index": 2, "expert_version": 3, "round": 4, "step": 5}


def _matrix(n: int = 3, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_forward_messages_round_trip():
    request = TrainForwardRequest(7, 1, 2, 3, 4, 5, _matrix())
    decoded = TrainForwardRequest.decode(request.encode())
    assert (decoded.task_id, decoded.round, decoded.step) == (7, 4, 5)
    np.testing.assert_array_equal(decoded.tokens, request.tokens)
    response = TrainForwardResponse(7, NODE, 1, 2, 3, 4, 5, _matrix(seed=1))
    back = TrainForwardResponse.decode(response.encode())
    assert back.node == NODE and back.step == 5
    np.testing.assert_array_equal(back.outputs, response.outputs)


def test_backward_messages_round_trip_with_lr_and_stats():
    request = TrainBackwardRequest(7, 1, 2, 3, 4, 5, 0.0125, _matrix())
    decoded = TrainBackwardRequest.decode(request.encode())
    assert decoded.lr == 0.0125
    np.testing.assert_array_equal(decoded.grad_outputs, request.grad_outputs)
    response = TrainBackwardResponse(7, NODE, 1, 2, 3, 4, 5, StepStats(1.5, 0.25, 3.0, 4.5), _matrix(seed=2))
    back = TrainBackwardResponse.decode(response.encode())
    assert back.stats == StepStats(1.5, 0.25, 3.0, 4.5)
    np.testing.assert_array_equal(back.grad_inputs, response.grad_inputs)


def test_finish_messages_round_trip_as_json():
    request = TrainFinishRequest(7, 1, 2, 3, 4)
    assert TrainFinishRequest.from_json(request.to_json()) == request
    response = TrainFinishResponse(4, 3, 18, 5, "QmWeights", bytes(range(32)), "QmBundle", bytes(range(32, 64)))
    assert response.to_json()["root"] == "0x" + bytes(range(32, 64)).hex()
    assert TrainFinishResponse.from_json(response.to_json()) == response


@pytest.mark.parametrize("lr", [-0.1, float("nan"), "0.1", True])
def test_a_backward_request_with_a_bad_learning_rate_is_refused(lr):
    body = encode_frame({**IDS, "lr": lr}, {"grad_outputs": _matrix()})
    with pytest.raises(FrameError, match="lr"):
        TrainBackwardRequest.decode(body)


def test_a_forward_request_needs_one_float32_tokens_matrix():
    for tensors in ({"tokens": np.zeros((2, 8), np.int8)}, {"inputs": _matrix()}, {"tokens": _matrix(0)},
                    {"tokens": _matrix(), "extra": _matrix()}):  # fmt: skip
        with pytest.raises(FrameError):
            TrainForwardRequest.decode(encode_frame(IDS, tensors))


def test_a_message_without_its_round_or_step_is_refused():
    for missing in ("round", "step"):
        header = {k: v for k, v in IDS.items() if k != missing}
        with pytest.raises(FrameError, match=missing):
            TrainForwardRequest.decode(encode_frame(header, {"tokens": _matrix()}))


def test_a_finish_answer_without_its_root_is_refused():
    body = TrainFinishResponse(4, 3, 18, 5, "QmW", bytes(32), "QmB", bytes(32)).to_json()
    del body["root"]
    with pytest.raises(FrameError, match="root"):
        TrainFinishResponse.from_json(body)
