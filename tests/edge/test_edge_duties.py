"""The commitment duty and payment of an edge node process (docs/protocol.md 9 and 4): windows closed on time or
size, their bundle pinned and their root committed; finalized and claimed after the challenge window; and a node
killed in the middle of a window that is restarted on the same state still commits it and is paid."""
from __future__ import annotations

import pytest

from bmoe_py.protocol.bundle import WindowBundle
from bmoe_py.storage.client import IpfsClient

from conftest import CHALLENGE_WINDOW
from edge_client import GWEI, create_task, forward, tokens
from edge_nodes import start_edge
from polling import wait_for

pytestmark = pytest.mark.timeout(120)


def posted(chain, node: str) -> list[dict]:
    """The CommitmentPosted events of `node`, oldest first."""
    logs = chain.ledger.events.CommitmentPosted.get_logs(from_block=0, argument_filters={"node": node})
    return [dict(entry["args"]) for entry in logs]



def skip_challenge_window(web3) -> None:
    web3.provider.make_request("evm_increaseTime", [CHALLENGE_WINDOW + 1])
    web3.provider.make_request("evm_mine", [])


def test_window_bundle_is_pinned_and_its_root_committed_after_window_seconds(network, model_id, node_key, tmp_path):
    chain = network.chain()
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [0], node_key, tmp_path, window_seconds=1)
    try:
        a = forward(edge.url, chain, task, model_id, 0, tokens(5, seed=1))
        b = forward(edge.url, chain, task, model_id, 0, tokens(7, seed=2))
        (event,) = wait_for(lambda: posted(chain, edge.address), what="a commitment")
        edge.wait_for_log("committed window")
    finally:
        assert edge.stop() == 0
    commitment = event["commitment"]
    assert (commitment["taskId"], commitment["expertIndex"], commitment["tokenCount"]) == (task, 0, 12)
    with IpfsClient(network.ipfs.api) as ipfs:
        bundle = WindowBundle.decode(ipfs.cat(event["bundleCid"]))
    assert bundle.root == bytes(commitment["root"])
    assert bundle.requests == (a.receipt.request_id, b.receipt.request_id)
    assert (bundle.outputs[:5] == a.outputs).all() and (bundle.outputs[5:] == b.outputs).all()


def test_window_closes_at_window_tokens_before_its_time(network, model_id, node_key, tmp_path):
    chain = network.chain()
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [1], node_key, tmp_path, window_seconds=3600, window_tokens=32)
    try:
        forward(edge.url, chain, task, model_id, 1, tokens(32))
        (event,) = wait_for(lambda: posted(chain, edge.address), what="a commitment")
    finally:
        edge.stop()
    assert event["commitment"]["tokenCount"] == 32


def test_committed_window_is_finalized_and_claimed_after_the_challenge_window(network, model_id, node_key, tmp_path, web3):
    chain = network.chain()
    task = create_task(chain, model_id, price=GWEI)
    edge = start_edge(network.env(), model_id, [0], node_key, tmp_path, window_seconds=1)
    try:
        forward(edge.url, chain, task, model_id, 0, tokens(10))
        wait_for(lambda: posted(chain, edge.address), what="a commitment")
        skip_challenge_window(web3)
        log = edge.wait_for_log("claimed")
    finally:
        edge.stop()
    assert "payment 10000000000 wei" in log
    claims = chain.ledger.events.Claimed.get_logs(from_block=0, argument_filters={"account": edge.address})
    assert [c["args"]["amount"] for c in claims] == [10 * GWEI]
    assert chain.call(chain.ledger.functions.claimable(edge.address)) == 0


def test_node_killed_mid_window_and_after_committing_still_commits_once_and_is_paid(network, model_id, node_key, tmp_path, web3):
    chain = network.chain()
    task = create_task(chain, model_id, price=GWEI)
    edge = start_edge(network.env(), model_id, [2], node_key, tmp_path, window_seconds=3600)
    response = forward(edge.url, chain, task, model_id, 2, tokens(16))
    edge.kill()  # the window is open: nothing committed yet, only the database knows the request
    assert posted(chain, edge.address) == []

    edge = start_edge(network.env(), model_id, [2], node_key, tmp_path, window_seconds=1)
    (event,) = wait_for(lambda: posted(chain, edge.address), what="the commitment after the restart")
    assert bytes(event["commitment"]["root"]) == response.receipt.root  # the one request, tokens in order
    edge.wait_for_log("committed window")
    edge.kill()  # committed, not yet final: the payment duty is left to the next start

    skip_challenge_window(web3)
    edge = start_edge(network.env(), model_id, [2], node_key, tmp_path, window_seconds=1)
    try:
        edge.wait_for_log("claimed")
    finally:
        edge.stop()
    assert len(posted(chain, edge.address)) == 1  # committed once, whatever the restarts
    claims = chain.ledger.events.Claimed.get_logs(from_block=0, argument_filters={"account": edge.address})
    assert [c["args"]["amount"] for c in claims] == [16 * GWEI]
