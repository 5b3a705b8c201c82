"""An edge node process answers fraud-proof challenges against it by itself (docs/protocol.md 5): for an honest
token the proof then shows it honest and the challenger's bond goes to the node; for a token it manipulated (attack
mode) it must still reveal the output it returned, and proving one row of the last layer slashes it. Challenges on a
commitment that a publisher posted from the node's receipt (`postReceipt`) are answered the same way."""
from __future__ import annotations


import numpy as np
import pytest

from bmoe_py.crypto.commitments import Commitment
from bmoe_py.crypto.leaves import WeightsTree
from bmoe_py.model.int8_ref import expert_forward
from bmoe_py.protocol.bundle import WindowBundle
from bmoe_py.publisher.fetch import load_expert_from_chain

from edge_client import create_task, forward, tokens
from edge_nodes import start_edge
from polling import wait_for

pytestmark = pytest.mark.timeout(120)
AWAITING_PROOF, NODE_SLASHED, CHALLENGER_LOST = 2, 3, 4  # IFraudProof.Phase


@pytest.fixture
def chain(network):
    return network.chain()




def committed(chain, ipfs, node: str) -> tuple[Commitment, WindowBundle]:
    """The node's first commitment and its bundle, once posted."""
    logs = wait_for(lambda: chain.ledger.events.CommitmentPosted.get_logs(from_block=0, argument_filters={"node": node}),
                    what="a commitment")  # fmt: skip
    args = logs[0]["args"]
    return Commitment.from_event(args["commitment"]), WindowBundle.decode(ipfs.cat(args["bundleCid"]))


def challenge(chain, commitment: Commitment, bundle: WindowBundle, position: int) -> int:
    token = bundle.token(position)
    fp = chain.fraud_proof
    receipt = chain.send(
        fp.functions.challenge(commitment.as_tuple(), token.leaf.as_tuple(), token.proof, token.input.tobytes()),
        value=chain.call(fp.functions.bond()),
    )
    return int(chain.events(receipt, "FraudProof", "Challenged")[0]["disputeId"])


def responded(chain, dispute_id: int) -> list[bytes]:
    """The activations the node revealed, once it has."""
    wait_for(lambda: chain.call(chain.fraud_proof.functions.dispute(dispute_id))[6] == AWAITING_PROOF,
             what=f"the node's response to dispute {dispute_id}")  # fmt: skip
    (entry,) = chain.fraud_proof.events.Responded.get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
    return [bytes(a) for a in entry["args"]["activations"]]


def prove_last_layer(chain, ipfs, model_id: int, expert: int, dispute_id: int, activations: list[bytes], row: int) -> bool:
    """Proves one row of the last layer from the revealed activations; True if the contract found fraud."""
    layers = load_expert_from_chain(chain, ipfs, model_id, expert).layers
    last = len(layers) - 1
    weights = WeightsTree(layers)
    leaf = weights.row(last, row)
    receipt = chain.send(chain.fraud_proof.functions.prove(
        dispute_id, last, row, activations[last - 1], activations[last], leaf.weights, leaf.bias, weights.proof(last, row)
    ))  # fmt: skip
    return bool(chain.events(receipt, "FraudProof", "Resolved")[0]["fraud"])


def test_node_responds_to_a_challenge_of_an_honest_token_and_wins_the_bond(network, chain, ipfs, model_id, node_key, tmp_path):
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [0], node_key, tmp_path, window_seconds=1)
    try:
        x = tokens(6)
        forward(edge.url, chain, task, model_id, 0, x)
        commitment, bundle = committed(chain, ipfs, edge.address)
        dispute = challenge(chain, commitment, bundle, 3)
        activations = responded(chain, dispute)
        honest = expert_forward(load_expert_from_chain(chain, ipfs, model_id, 0).layers, bundle.inputs[3:4])
        assert activations == [a[0].tobytes() for a in honest]
        assert not prove_last_layer(chain, ipfs, model_id, 0, dispute, activations, row=0)
        edge.wait_for_log("claimed 100000000000000000 wei from the fraud proof")
    finally:
        assert edge.stop() == 0
    assert "responded with 2 layers of activations" in edge.log


def test_manipulated_token_is_revealed_as_returned_and_proving_its_last_layer_slashes_the_node(
    network, chain, ipfs, model_id, node_key, tmp_path
):
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [1], node_key, tmp_path, window_seconds=1,
                      attack="gaussian", attack_strength=2, attack_fraction=1)  # fmt: skip
    try:
        response = forward(edge.url, chain, task, model_id, 1, tokens(4))
        commitment, bundle = committed(chain, ipfs, edge.address)
        layers = load_expert_from_chain(chain, ipfs, model_id, 1).layers
        honest = expert_forward(layers, bundle.inputs)
        wrong = np.flatnonzero((honest[-1] != bundle.outputs).any(axis=1))
        assert len(wrong) > 0 and (bundle.outputs == response.outputs).all()  # it committed what it returned
        dispute = challenge(chain, commitment, bundle, int(wrong[0]))
        activations = responded(chain, dispute)
        assert activations[-1] == bundle.outputs[wrong[0]].tobytes()
        row = int(np.flatnonzero(honest[-1][wrong[0]] != bundle.outputs[wrong[0]])[0])
        assert prove_last_layer(chain, ipfs, model_id, 1, dispute, activations, row)
        edge.wait_for_log("resolved, fraud")
    finally:
        edge.stop()
    assert chain.call(chain.staking.functions.stakeOf(edge.address)) == 0
    state = chain.call(chain.ledger.functions.commitmentState(commitment.id()))
    assert state[0] == 3  # Invalidated


def test_node_responds_to_a_challenge_on_a_commitment_posted_from_its_receipt(network, chain, ipfs, model_id, node_key, tmp_path):
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [2], node_key, tmp_path, window_seconds=3600)
    try:
        x = tokens(5)
        response = forward(edge.url, chain, task, model_id, 2, x)
        r = response.receipt
        bundle = WindowBundle.of_requests(r.node, task, model_id, 2, r.expert_version, [(r.request_id, x, response.outputs)])
        cid = ipfs.add_bytes(bundle.encode())
        receipt = chain.send(chain.ledger.functions.postReceipt(r.as_tuple(), response.signature, cid))
        (event,) = chain.events(receipt, "ResultLedger", "CommitmentPosted")
        commitment = Commitment.from_event(event["commitment"])
        assert commitment.from_receipt
        dispute = challenge(chain, commitment, bundle, 4)
        assert len(responded(chain, dispute)) == 2
    finally:
        assert edge.stop() == 0


def test_challenge_made_while_the_node_was_down_is_answered_after_its_restart(network, chain, ipfs, model_id, node_key, tmp_path):
    task = create_task(chain, model_id)
    edge = start_edge(network.env(), model_id, [0], node_key, tmp_path, window_seconds=1)
    forward(edge.url, chain, task, model_id, 0, tokens(3))
    commitment, bundle = committed(chain, ipfs, edge.address)
    edge.kill()
    dispute = challenge(chain, commitment, bundle, 1)
    edge = start_edge(network.env(), model_id, [0], node_key, tmp_path, window_seconds=1)
    try:
        assert len(responded(chain, dispute)) == 2
    finally:
        assert edge.stop() == 0
