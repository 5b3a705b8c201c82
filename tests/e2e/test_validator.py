"""The validator loop (bmoe_py.validator.service) against commitments of a node played by the test: bundles pinned to
the real IPFS daemon, real commit transactions, real disputes. The `bmoe validator` process is tested at the end.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from bmoe_py.validator.checker import sample_positions, within_tolerance
from bmoe_py.validator.fraud import FraudProofDriver
from bmoe_py.validator.service import Validator, ValidatorConfig
from bmoe_py.validator.store import ValidatorStore
from scripted_node import create_task, fresh_key
from scripted_node import layers, model_id, node, travel  # noqa: F401 (fixtures)
from polling import wait_for
from validator_nodes import start_validator

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def validator_key(accounts) -> str:
    return fresh_key(accounts[0])


@pytest.fixture
def make_validator(network, ipfs, model_id, validator_key, tmp_path):
    """A validator of the model with its state in tmp_path; calling it again is a restart on the same state."""
    opened: list[ValidatorStore] = []

    def make(rate: float = 1.0) -> Validator:
        for store in opened:
            store.close()
        opened.append(ValidatorStore(tmp_path / "validator.sqlite"))
        return Validator(network.chain(validator_key), ipfs, opened[-1], ValidatorConfig(model_id, sample_rate=rate))

    yield make
    opened[-1].close()


@pytest.fixture
def tokens() -> np.ndarray:
    return np.random.default_rng(3).integers(-128, 128, size=(5, 8)).astype(np.int8)


@pytest.fixture
def task(network, model_id) -> int:
    return create_task(network.chain(), model_id)


def disputes_by(chain, address: str) -> list[int]:
    logs = chain.fraud_proof.events.Challenged().get_logs(from_block=0)
    return [int(l["args"]["disputeId"]) for l in logs if l["args"]["challenger"].lower() == address.lower()]


def test_a_manipulated_commitment_is_challenged_proven_and_the_node_slashed(node, make_validator, task, layers, tokens):
    window = node.commit(task, 0, layers, tokens, manipulate=(2,))
    validator = make_validator()
    validator.run_once()
    (dispute,) = disputes_by(validator.chain, validator.chain.address)
    node.respond(dispute)
    validator.run_once()
    chain = validator.chain
    assert chain.call(chain.staking.functions.stakeOf(node.address)) == 0
    row = validator.store.disputes()[0]
    assert (row.commitment_id, row.position, row.outcome, row.done) == (window.commitment.id(), 2, "fraud", True)
    assert validator.store.status(window.commitment.id()) == "disputed"


def test_an_honest_commitment_is_checked_and_left_alone(node, make_validator, task, layers, tokens):
    window = node.commit(task, 0, layers, tokens)
    validator = make_validator()
    validator.run_once()
    assert validator.store.status(window.commitment.id()) == "ok"
    assert validator.store.samples(window.commitment.id()) == {p: True for p in range(len(tokens))}
    assert disputes_by(validator.chain, validator.chain.address) == []


def test_a_node_silent_after_the_challenge_loses_by_timeout(node, make_validator, task, layers, tokens, web3):
    node.commit(task, 0, layers, tokens, manipulate=(0, 4))
    validator = make_validator()
    validator.run_once()
    travel(web3, validator.chain.call(validator.chain.fraud_proof.functions.responseWindow()) + 1)
    validator.run_once()
    assert validator.store.disputes()[0].outcome == "fraud"
    assert validator.chain.call(validator.chain.staking.functions.stakeOf(node.address)) == 0


def test_a_restarted_validator_finishes_its_dispute_without_challenging_again(node, make_validator, task, layers, tokens):
    node.commit(task, 0, layers, tokens, manipulate=(1,))
    first = make_validator()
    first.run_once()
    (dispute,) = disputes_by(first.chain, first.chain.address)
    node.respond(dispute)
    second = make_validator()  # same SQLite file: a restart
    second.run_once()
    second.run_once()
    assert disputes_by(second.chain, second.chain.address) == [dispute]
    assert second.store.disputes()[0].outcome == "fraud"


def test_a_challenge_sent_just_before_a_crash_is_recovered_from_the_chain(node, make_validator, task, layers, tokens, ipfs):
    window = node.commit(task, 0, layers, tokens, manipulate=(3,))
    validator = make_validator()
    validator.watcher.poll()
    # what a crash right after sending the challenge leaves behind: the intent, no dispute id, status still "seen"
    validator.store.intend_dispute("fraud", window.commitment.id(), 3)
    sent = FraudProofDriver(validator.chain, ipfs).challenge(window.commitment, window.bundle.token(3))
    restarted = make_validator()
    restarted.run_once()
    assert disputes_by(restarted.chain, restarted.chain.address) == [sent]
    assert restarted.store.disputes()[0].dispute_id == sent


def test_a_bundle_whose_root_is_not_the_committed_root_is_refused(node, make_validator, task, layers, tokens, ipfs):
    honest = node.commit(task, 0, layers, tokens)
    # the node commits a root but pins another window's bundle under it
    other = node.commit(task, 0, layers, tokens[:2])
    receipt = node.chain.send(
        node.chain.ledger.functions.commit(task, 0, 1, b"\x11" * 32, len(other.bundle), other.cid)
    )
    validator = make_validator()
    validator.run_once()
    bad = [c for c in validator.store.commitments("bad_bundle")]
    assert len(bad) == 1 and bad[0].commitment.root == b"\x11" * 32 and receipt["status"] == 1
    assert validator.store.status(honest.commitment.id()) == "ok"


def test_a_commitment_seen_after_its_challenge_window_is_not_challenged(node, make_validator, task, layers, tokens, web3):
    window = node.commit(task, 0, layers, tokens, manipulate=(0,))
    validator = make_validator()
    travel(web3, validator.chain.call(validator.chain.registry.functions.model(validator.config.model_id))[4] + 1)
    validator.run_once()
    assert validator.store.status(window.commitment.id()) == "expired"
    assert disputes_by(validator.chain, validator.chain.address) == []


def test_a_commitment_of_another_model_is_ignored(network, node, make_validator, task, layers, tokens, ipfs):
    from bmoe_py.publisher.publish import publish_model
    from tiny_model import small_model

    other_model = publish_model(network.chain(), ipfs, small_model(seed=5)).model_id
    validator = make_validator()
    assert validator.config.model_id != other_model
    node.commit(task, 0, layers, tokens)
    assert len(validator.watcher.poll()) == 1
    assert validator.watcher.poll() == []  # the cursor moved on


def test_the_sample_is_ceil_p_times_n_distinct_tokens():
    assert [len(sample_positions(n, p)) for n, p in [(10, 0.1), (10, 0.11), (3, 0.01), (7, 1.0)]] == [1, 2, 1, 7]
    assert len(set(sample_positions(100, 0.5))) == 50


def test_float_agreement_is_relative_to_the_output_scale():
    expected = np.array([10.0, -2.0, 0.5], np.float32)
    assert within_tolerance(expected + 0.0009, expected, 100)  # 1e-4 * 10 = 1e-3
    assert not within_tolerance(expected + np.array([0, 0.002, 0], np.float32), expected, 100)
    assert not within_tolerance(np.array([np.nan, 0, 0], np.float32), expected, 10**6)


# ------------------------------------------------------------------------------------------- the process


def test_the_validator_process_catches_a_cheat_and_finishes_the_dispute_after_a_kill(
    network, node, model_id, validator_key, task, layers, tokens, tmp_path
):
    chain = network.chain(validator_key)
    node.commit(task, 0, layers, tokens, manipulate=(4,))
    ready = tmp_path / "ready.json"
    proc = start_validator(network, validator_key, model_id, tmp_path, ready)
    assert json.loads(ready.read_text())["address"] == chain.address
    (dispute,) = wait_for(lambda: disputes_by(chain, chain.address), what="a challenge")
    proc.kill()  # SIGKILL mid-dispute: no chance to save anything more
    proc.wait()
    node.respond(dispute)
    ready.unlink()
    proc = start_validator(network, validator_key, model_id, tmp_path, ready)
    try:
        wait_for(lambda: chain.call(chain.staking.functions.stakeOf(node.address)) == 0, what="the slash")
        wait_for(lambda: chain.call(chain.fraud_proof.functions.claimable(chain.address)) == 0, what="the claim")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert disputes_by(chain, chain.address) == [dispute]
    assert "dispute %d ended: fraud" % dispute in (tmp_path / "log.txt").read_text()


def test_a_signflip_edge_node_process_is_caught_and_slashed_by_a_validator_process(
    network, model_id, validator_key, accounts, tmp_path
):
    import requests

    from bmoe_py.crypto import request_id
    from bmoe_py.protocol.wire import CONTENT_TYPE, ForwardRequest
    from edge_nodes import start_edge

    publisher = network.chain()
    chain = network.chain(validator_key)
    edge = start_edge(network.env(), model_id, [0], fresh_key(accounts[0]), tmp_path, attack="signflip", window_seconds=1)
    proc = None
    try:
        proc = start_validator(network, validator_key, model_id, tmp_path, tmp_path / "ready.json")
        task = create_task(publisher, model_id)
        x = np.random.default_rng(11).integers(-128, 128, (16, 8), dtype=np.int8)
        body = ForwardRequest(task, model_id, 0, 0, request_id(task, publisher.address, 1), x).encode()
        reply = requests.post(edge.url + "/v1/forward", data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=20)
        assert reply.status_code == 200, reply.text
        wait_for(lambda: chain.call(chain.staking.functions.stakeOf(edge.address)) == 0, timeout=60, what="the slash")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        edge.stop()
    (dispute,) = disputes_by(chain, chain.address)
    assert chain.call(chain.fraud_proof.functions.dispute(dispute))[6] == 3  # NodeSlashed


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--sample-rate", "0"], {}, "the sample rate must be in (0, 1], not 0.0"),
        ([], {"BMOE_PRIVATE_KEY": ""}, "no private key: set BMOE_PRIVATE_KEY"),
    ],
)
def test_the_validator_command_refuses_bad_options_with_one_line(network, args, env, message):
    done = subprocess.run(
        [sys.executable, "-m", "bmoe_py", "validator", "--model", "1", *args], env=network.env(**env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode in (1, 2) and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
