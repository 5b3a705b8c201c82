"""FraudProofDriver against the real FraudProof: a node played by the test (tests/scripted_node.py) commits a window
with one manipulated token; the driver challenges, proves the right row, and the chain settles.

Real parts: brownie's anvil with the deployed suite, a `bmoe ipfs daemon` holding the model and the bundle.
"""
from __future__ import annotations

import numpy as np
import pytest

from bmoe_py.model.int8_ref import expert_forward
from bmoe_py.validator.fraud import FraudProofDriver, first_wrong_row
from scripted_node import create_task, fresh_key, layers, model_id, node, travel  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(120)
INVALIDATED = 3  # IResultLedger.CommitmentStatus


@pytest.fixture
def driver(network, ipfs, accounts) -> FraudProofDriver:
    return FraudProofDriver(network.chain(fresh_key(accounts[0])), ipfs)


@pytest.fixture
def window(network, node, model_id, layers):
    task = create_task(network.chain(), model_id)
    tokens = np.random.default_rng(7).integers(-128, 128, size=(6, 8)).astype(np.int8)
    return node.commit(task, 0, layers, tokens, manipulate=(4,))


def test_a_manipulated_token_is_proven_and_the_node_slashed(network, node, driver, window):
    dispute = driver.challenge(window.commitment, window.bundle.token(4))
    node.respond(dispute)
    balance = driver.chain.w3.eth.get_balance(driver.chain.address)
    status = driver.settle(dispute, timeout=30)
    assert (status.outcome, status.phase, status.done) == ("fraud", "node_slashed", True)
    chain = driver.chain
    assert chain.call(chain.staking.functions.stakeOf(node.address)) == 0
    assert chain.call(chain.ledger.functions.commitmentState(window.commitment.id()))[0] == INVALIDATED
    checked = chain.fraud_proof.events.RowChecked().get_logs(from_block=0, argument_filters={"disputeId": dispute})
    assert checked[-1]["args"]["layer"] == 1  # the node's hidden layer was honest; its output layer was not
    assert chain.w3.eth.get_balance(chain.address) > balance  # bond + reward claimed, minus gas


def test_an_honest_token_ends_honest_and_the_bond_goes_to_the_node(network, node, driver, window):
    chain = driver.chain
    bond = chain.call(chain.fraud_proof.functions.bond())
    dispute = driver.challenge(window.commitment, window.bundle.token(0))
    node.respond(dispute)
    status = driver.settle(dispute, timeout=30)
    assert (status.outcome, status.phase, status.done) == ("honest", "challenger_lost", True)
    assert chain.call(chain.fraud_proof.functions.claimable(node.address)) == bond
    assert chain.call(chain.staking.functions.stakeOf(node.address)) > 0


def test_a_node_silent_past_its_response_window_loses_by_timeout(network, node, driver, window, web3):
    dispute = driver.challenge(window.commitment, window.bundle.token(0))
    assert driver.step(dispute).phase == "awaiting_response"
    travel(web3, driver.chain.call(driver.chain.fraud_proof.functions.responseWindow()) + 1)
    status = driver.settle(dispute, timeout=30)
    assert (status.outcome, status.done) == ("fraud", True)
    assert driver.chain.call(driver.chain.staking.functions.stakeOf(node.address)) == 0


def test_step_before_any_deadline_waits_for_the_node(node, driver, window):
    dispute = driver.challenge(window.commitment, window.bundle.token(2))
    assert [driver.step(dispute).phase for _ in range(2)] == ["awaiting_response"] * 2


def test_the_first_wrong_row_is_in_the_first_layer_that_does_not_follow_from_its_input(layers):
    x = np.arange(8, dtype=np.int8)
    activations = [a[0].copy() for a in expert_forward(layers, x[None, :])]
    assert first_wrong_row(layers, x, activations) is None
    activations[0][5] ^= 1  # a wrong hidden row; the output layer follows from it, so layer 0 is the one to prove
    activations[1] = expert_forward(layers[1:], activations[0][None, :])[0][0]
    wrong = first_wrong_row(layers, x, activations)
    assert (wrong.layer, wrong.row, wrong.claimed != wrong.recomputed) == (0, 5, True)
