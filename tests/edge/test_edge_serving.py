"""An edge node process serves verified exact experts over HTTP: health, forward calls with signed receipts whose
root covers exactly the returned outputs, and it stakes and registers itself on chain."""
from __future__ import annotations

import numpy as np
import pytest
import requests
from eth_account import Account

from bmoe_py.crypto.receipts import recover_signer
from bmoe_py.protocol.bundle import WindowBundle
from bmoe_py.publisher.fetch import load_expert_from_chain
from bmoe_py.model.int8_ref import expert_forward
from bmoe_py.storage.client import IpfsClient

from conftest import ETHER
from edge_nodes import EdgeStartError, start_edge
from edge_client import create_task, forward, tokens

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def edge(network, model_id, accounts, tmp_path_factory):
    """One node for the module, started before brownie's first snapshot (its stake and registration survive the
    reverts); its window is an hour, so it commits nothing that a revert would take back."""
    account = Account.create()
    accounts[0].transfer(account.address, 10 * ETHER)
    node = start_edge(network.env(), model_id, [0, 2], "0x" + bytes(account.key).hex(), tmp_path_factory.mktemp("edge"),
                      window_seconds=3600)  # fmt: skip
    yield node
    assert node.stop() == 0, node.log


def test_node_stakes_and_registers_its_endpoint_for_each_expert(network, model_id, edge):
    chain = network.chain()
    registry = chain.registry
    for expert in (0, 2):
        assert chain.call(registry.functions.isActiveHost(model_id, expert, edge.address))
        assert chain.call(registry.functions.endpointOf(model_id, expert, edge.address)) == edge.url
    assert not chain.call(registry.functions.isHost(model_id, 1, edge.address))
    model = chain.call(registry.functions.model(model_id))
    assert chain.call(chain.staking.functions.stakeOf(edge.address)) >= model[5]


def test_health_lists_the_served_experts(network, model_id, edge):
    health = requests.get(edge.url + "/v1/health", timeout=10).json()
    assert health["node"] == edge.address and health["model_id"] == model_id
    assert health["chain_id"] == network.manifest.chain_id
    assert [(e["index"], e["version"], e["in_dim"], e["out_dim"], e["exact"]) for e in health["experts"]] == [
        (0, 1, 8, 8, True), (2, 1, 8, 8, True)
    ]  # fmt: skip
    assert isinstance(health["pending_tokens"], int)


def test_forward_returns_the_exact_outputs_with_a_receipt_signed_by_the_node(network, model_id, edge):
    chain = network.chain()
    task = create_task(chain, model_id)
    x = tokens(64)
    response = forward(edge.url, chain, task, model_id, 2, x)
    with IpfsClient(network.ipfs.api) as ipfs:
        expected = expert_forward(load_expert_from_chain(chain, ipfs, model_id, 2).layers, x)[-1]
    np.testing.assert_array_equal(response.outputs, expected)
    receipt = response.receipt
    assert (receipt.task_id, receipt.node, receipt.model_id, receipt.expert_index, receipt.expert_version) == (
        task, edge.address, model_id, 2, 1
    )  # fmt: skip
    assert receipt.token_count == 64
    assert recover_signer(receipt, response.signature, chain.chain_id, chain.ledger.address) == edge.address
    own = WindowBundle.of_requests(edge.address, task, model_id, 2, 1, [(receipt.request_id, x, response.outputs)])
    assert own.root == receipt.root

def test_answered_tokens_are_pending_until_committed(network, model_id, edge):
    chain = network.chain()
    before = requests.get(edge.url + "/v1/health", timeout=10).json()["pending_tokens"]
    forward(edge.url, chain, create_task(chain, model_id), model_id, 0, tokens(64))
    assert requests.get(edge.url + "/v1/health", timeout=10).json()["pending_tokens"] == before + 64


def test_sigterm_stops_the_node_with_exit_code_zero(network, model_id, node_key, tmp_path):
    node = start_edge(network.env(), model_id, [1], node_key, tmp_path)
    assert node.stop() == 0
    assert f"edge node {node.address} stopped" in node.log
    assert node_key[2:].lower() not in node.log.lower()  # the key is never printed


def test_an_unknown_model_stops_the_node_with_a_one_line_error(network, node_key, tmp_path):
    with pytest.raises(EdgeStartError, match=r"exit code 1\):\nbmoe edge: chain \d+ has no model 999"):
        start_edge(network.env(), 999, [0], node_key, tmp_path, timeout=60)
