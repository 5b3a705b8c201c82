"""Bad requests get a JSON 4xx with the protocol's error code (docs/protocol.md 8), are neither signed, stored nor
committed, and the node keeps serving.

One node serves the whole module (starting one per test would triple the module's time). It is started before
brownie's first snapshot, so its stake and registration survive the reverts; its window is an hour, so nothing it
stores is ever committed on a chain that a revert would take back.
"""
from __future__ import annotations

import numpy as np
import pytest
import requests
from eth_account import Account

from bmoe_py.protocol.wire import MAX_TOKENS_PER_REQUEST, ForwardRequest, encode_frame

from conftest import ETHER
from edge_client import create_task, fresh_request_id, post_frame, tokens
from edge_nodes import start_edge

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def edge(network, model_id, accounts, tmp_path_factory):
    account = Account.create()
    accounts[0].transfer(account.address, 10 * ETHER)
    node = start_edge(network.env(), model_id, [0], "0x" + bytes(account.key).hex(), tmp_path_factory.mktemp("edge"),
                      window_seconds=3600)  # fmt: skip
    yield node
    assert node.stop() == 0, node.log


@pytest.fixture
def chain(network):
    return network.chain()


def request(chain, task: int, model_id: int, x=None, expert: int = 0, version: int = 0, rid=None) -> ForwardRequest:
    x = tokens(4) if x is None else x
    return ForwardRequest(task, model_id, expert, version, rid or fresh_request_id(chain, task), x)


def assert_refused(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["message"]
    return body["message"]


def pending(edge) -> int:
    return requests.get(edge.url + "/v1/health", timeout=10).json()["pending_tokens"]


# Runs first: the node remembers open tasks for a few seconds, and a later test's task could reuse this task id
# (brownie reverts the chain between tests).
def test_closed_task_is_refused_with_422(edge, chain, model_id):
    task = create_task(chain, model_id)
    chain.send(chain.ledger.functions.closeTask(task))
    message = assert_refused(post_frame(edge.url, request(chain, task, model_id).encode()), 422, "unknown_task")
    assert "closed" in message


def test_unknown_task_is_refused_with_422(edge, chain, model_id):
    assert_refused(post_frame(edge.url, request(chain, 10**6, model_id).encode()), 422, "unknown_task")


def test_garbage_body_is_refused_with_400(edge):
    assert_refused(post_frame(edge.url, b"not a frame at all"), 400, "bad_request")


def test_truncated_frame_is_refused_with_400(edge, chain, model_id):
    body = request(chain, 1, model_id).encode()
    assert_refused(post_frame(edge.url, body[:-3]), 400, "bad_request")


def test_float_tokens_for_an_exact_expert_are_refused_with_400(edge, chain, model_id):
    x = np.zeros((4, 8), dtype=np.float32)
    message = assert_refused(post_frame(edge.url, request(chain, 1, model_id, x).encode()), 400, "bad_request")
    assert "int8" in message


def test_tokens_of_the_wrong_width_are_refused_with_400(edge, chain, model_id):
    x = tokens(4, dim=7)
    message = assert_refused(post_frame(edge.url, request(chain, 1, model_id, x).encode()), 400, "bad_request")
    assert "[n, 8]" in message


def test_a_frame_without_a_request_id_is_refused_with_400(edge, model_id):
    body = encode_frame({"task_id": 1, "model_id": model_id, "expert_index": 0, "expert_version": 0}, {"tokens": tokens(2)})
    assert_refused(post_frame(edge.url, body), 400, "bad_request")


def test_more_tokens_than_the_limit_are_refused_with_413(edge, chain, model_id):
    x = np.zeros((MAX_TOKENS_PER_REQUEST + 1, 8), dtype=np.int8)
    assert_refused(post_frame(edge.url, request(chain, 1, model_id, x).encode()), 413, "too_large")


def test_an_expert_not_hosted_here_is_refused_with_404(edge, chain, model_id):
    assert_refused(post_frame(edge.url, request(chain, 1, model_id, expert=1).encode()), 404, "unknown_expert")


def test_another_version_is_refused_with_404(edge, chain, model_id):
    assert_refused(post_frame(edge.url, request(chain, 1, model_id, version=2).encode()), 404, "unknown_expert")


def test_another_model_is_refused_with_404(edge, chain, model_id):
    assert_refused(post_frame(edge.url, request(chain, 1, model_id + 1).encode()), 404, "unknown_expert")


def test_a_request_id_answered_before_is_refused_with_409_and_not_stored_twice(edge, chain, model_id):
    task = create_task(chain, model_id)
    first = request(chain, task, model_id)
    before = pending(edge)
    assert post_frame(edge.url, first.encode()).status_code == 200
    again = request(chain, task, model_id, x=tokens(4, seed=9), rid=first.request_id)
    assert_refused(post_frame(edge.url, again.encode()), 409, "duplicate_request")
    assert pending(edge) == before + 4


def test_refused_requests_leave_the_node_serving_and_store_nothing(edge, chain, model_id):
    before = pending(edge)
    for body in (b"", b"BMOE\x01\xff\xff\xff\xff", request(chain, 10**6, model_id).encode()):
        assert 400 <= post_frame(edge.url, body).status_code < 500
    assert edge.alive() and pending(edge) == before
    task = create_task(chain, model_id)
    assert post_frame(edge.url, request(chain, task, model_id).encode()).status_code == 200
