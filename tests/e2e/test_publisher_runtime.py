"""The publisher runtime against real edge nodes: `bmoe edge` processes serving HTTP, anvil with the deployed suite,
a real `bmoe ipfs daemon`. Nothing is mocked; a cheating node is a real node started with `--attack`.

One small exact model on digits (3 experts, top-2, 4 tokens per sample) is published once per module; every test
starts and stops its own edge nodes, because brownie reverts the chain (and so every host registration) after it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from eth_account import Account

from bmoe_py.model.data import load_digits
from bmoe_py.model.exact import ExactMoE
from bmoe_py.publisher.fetch import load_exact_model_from_chain
from bmoe_py.publisher.hosts import ExpertUnavailable
from bmoe_py.publisher.prepare import TrainingOptions, model_files, prepare
from bmoe_py.publisher.publish import publish_model
from bmoe_py.publisher.runtime import InferenceSession, SessionError
from bmoe_py.publisher.tasks import close_task, create_task, task_state
from edge_nodes import EdgeProcess, start_edge
from polling import wait_for
from torch_threads import one_torch_thread  # noqa: F401  (autouse: the gate and training here are tiny)
from validator_nodes import start_validator

pytestmark = pytest.mark.timeout(150)
ETHER = 10**18
EXPERTS = [0, 1, 2]
SAMPLES = 48



@pytest.fixture(scope="module")
def model_id(network, ipfs) -> int:
    prepared = prepare(TrainingOptions(dataset="digits", epochs=3, experts=3, k=2, d_model=16, d_hidden=32, patch_size=16))
    return publish_model(network.chain(), ipfs, model_files(prepared.model, prepared.exact.experts)).model_id


@pytest.fixture(scope="module")
def reference(network, ipfs, model_id) -> ExactMoE:
    """The same published model run in this process: gate and experts loaded (and verified) from the chain."""
    return load_exact_model_from_chain(network.chain(), ipfs, model_id)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.x_test[:SAMPLES], data.y_test[:SAMPLES]


@pytest.fixture
def chain(network):
    return network.chain()


@pytest.fixture
def nodes(network, model_id, accounts, tmp_path):
    """`nodes(n, attack=...)` starts n edge nodes (in parallel) hosting every expert; all are stopped after the test.
    `nodes.keys[address]` is a node's key, for tests that act as the node's owner."""
    started: list[EdgeProcess] = []

    def start(count: int, **flags) -> list[EdgeProcess]:
        keys = []
        for _ in range(count):
            account = Account.create()
            accounts[0].transfer(account.address, 5 * ETHER)
            keys.append("0x" + bytes(account.key).hex())
            start.keys[account.address] = keys[-1]
        with ThreadPoolExecutor(count) as pool:
            edges = list(pool.map(lambda key: start_edge(network.env(), model_id, EXPERTS, key, tmp_path, **flags), keys))
        started.extend(edges)
        return edges

    start.keys = {}
    yield start
    for edge in started:
        edge.stop()


def predictions(reference: ExactMoE, x: torch.Tensor) -> list[int]:
    return reference(x).logits.argmax(-1).tolist()


def stake_of(chain, address: str) -> int:
    return chain.call(chain.staking.functions.stakeOf(address))


# ------------------------------------------------------------------------------------------- tasks


def test_a_session_creates_and_funds_a_task_for_the_model(chain, ipfs, model_id):
    with InferenceSession(chain, ipfs, model_id, "none", price_per_token=3 * 10**9, escrow=ETHER // 100) as session:
        state = task_state(chain, session.task_id)
    assert (state["publisher"], state["model_id"], state["price_per_token"]) == (chain.address, model_id, 3 * 10**9)
    assert (state["available"], state["reserved"], state["closed"]) == (ETHER // 100, 0, False)


def test_a_session_refuses_a_closed_task(chain, ipfs, model_id):
    task = create_task(chain, model_id, 10**9, ETHER // 100)
    close_task(chain, task)
    with pytest.raises(SessionError, match=f"task {task} is closed"):
        InferenceSession(chain, ipfs, model_id, "none", task_id=task)


def test_without_hosts_the_run_names_the_unavailable_expert(chain, ipfs, model_id, digits):
    with InferenceSession(chain, ipfs, model_id, "none") as session:
        with pytest.raises(ExpertUnavailable, match=r"expert \d is unavailable \(the registry lists no active host\)"):
            session.run(digits[0][:4])


# ------------------------------------------------------------------------------------------- edge nodes


def test_an_honest_network_predicts_exactly_as_the_model_in_process(chain, ipfs, model_id, reference, digits, nodes):
    edges = nodes(2)
    x, y = digits
    with InferenceSession(chain, ipfs, model_id, "none") as session:
        remote_logits = session.logits(x)
        report = session.run(x, y, batch_size=16)
    assert torch.equal(remote_logits, reference(x).logits)  # exact int8 experts: bit-identical, not just close
    assert report.predictions == predictions(reference, x)
    assert report.accuracy == pytest.approx(float(np.mean(np.array(report.predictions) == y.numpy())))
    assert set(report.calls_per_host) == {e.address for e in edges} and not report.failures_per_host
    assert report.tokens == SAMPLES * 4 * 2 and report.expert_tokens == report.tokens


def test_under_redundant_3_a_cheating_host_is_outvoted_slashed_and_dropped(chain, ipfs, model_id, reference, digits, nodes):
    honest = nodes(2)
    (cheater,) = nodes(1, attack="signflip")
    x, y = digits
    with InferenceSession(chain, ipfs, model_id, "redundant:3", dispute_timeout=60) as session:
        report = session.run(x, y, batch_size=16)
        assert report.predictions == predictions(reference, x)  # the majority's answers, not the cheater's
        assert report.disputes == {"opened": 1, "won": 1, "lost": 0, "pending": 0}
        assert report.slashed > 0 and cheater.address in report.evicted
        assert stake_of(chain, cheater.address) == 0
        slashes = chain.staking.events.Slashed().get_logs(from_block=0, argument_filters={"account": cheater.address})
        assert [s["args"]["amount"] for s in slashes] == [report.slashed]
        assert not any(chain.call(chain.registry.functions.isActiveHost(model_id, e, cheater.address)) for e in EXPERTS)
        again = session.run(x[:8], batch_size=8)
    assert cheater.address not in again.calls_per_host
    assert set(again.calls_per_host) == {e.address for e in honest}
    assert all(stake_of(chain, e.address) > 0 for e in honest)


def test_a_host_that_unbonds_its_stake_gets_no_further_call(network, chain, ipfs, model_id, digits, nodes):
    staying, leaving = nodes(2)
    x, _ = digits
    with InferenceSession(chain, ipfs, model_id, "none") as session:
        before = session.run(x[:16], batch_size=4)
        owner = network.chain(nodes.keys[leaving.address])
        owner.send(owner.staking.functions.requestUnbond(stake_of(chain, leaving.address)))
        after = session.run(x[:16], batch_size=4)
    assert before.calls_per_host.get(leaving.address, 0) > 0
    assert list(after.calls_per_host) == [staying.address]


def test_under_optimistic_a_cheater_is_caught_by_a_validator_process_slashed_and_dropped(
    network, chain, ipfs, model_id, digits, nodes, accounts, tmp_path
):
    honest, cheater = nodes(1)[0], nodes(1, attack="signflip")[0]
    x, _ = digits
    validator_key = "0x" + bytes(Account.create().key).hex()
    accounts[0].transfer(Account.from_key(validator_key).address, 2 * ETHER)
    validator = start_validator(network, validator_key, model_id, tmp_path, tmp_path / "ready.json")
    try:
        with InferenceSession(chain, ipfs, model_id, "optimistic:1") as session:
            before = session.run(x[:16], batch_size=4)
            assert before.calls_per_host.get(cheater.address, 0) > 0
            # The cheater commits its window; the validator fetches it, re-executes, challenges and proves.
            wait_for(lambda: chain.call(chain.staking.functions.stakeOf(cheater.address)) == 0, timeout=90, what="the slash")
            after = session.run(x, batch_size=8)
    finally:
        validator.terminate()
        validator.wait(20)
    assert list(after.calls_per_host) == [honest.address]
    assert after.evicted[cheater.address].startswith("slashed")
    assert after.disputes["opened"] == 0  # the validator's dispute, not the publisher's
    assert chain.call(chain.staking.functions.stakeOf(honest.address)) > 0


def test_a_task_completes_while_one_host_is_down(chain, ipfs, model_id, reference, digits, nodes):
    alive, dead = nodes(2)
    x, _ = digits
    with InferenceSession(chain, ipfs, model_id, "none") as session:
        session.run(x[:8], batch_size=8)  # both hosts discovered and healthy
        dead.kill()
        report = session.run(x, batch_size=8)
    assert report.predictions == predictions(reference, x)
    assert report.failures_per_host.get(dead.address, 0) >= 1  # tried, failed, and the call went to the other host
    assert report.calls_per_host[alive.address] > 0 and alive.address not in report.failures_per_host


def test_when_every_host_of_an_expert_is_down_the_run_names_it_and_the_hosts_tried(chain, ipfs, model_id, digits, nodes):
    (edge,) = nodes(1)
    with InferenceSession(chain, ipfs, model_id, "none", call_timeout=2) as session:
        session.run(digits[0][:4], batch_size=4)
        edge.kill()
        with pytest.raises(ExpertUnavailable) as unavailable:
            session.run(digits[0][:4], batch_size=4)
    assert unavailable.value.expert in EXPERTS
    assert list(unavailable.value.tried) == [edge.address] and "unreachable" in str(unavailable.value)


def test_bmoe_infer_prints_a_json_report(network, model_id, reference, nodes):
    (edge,) = nodes(1)
    result = subprocess.run(
        [sys.executable, "-m", "bmoe_py.cli.main", "infer", "--model", str(model_id), "--dataset", "digits",
         "--samples", "20", "--policy", "none", "--json"],
        env=network.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    x = load_digits().x_test[:20]
    assert report["predictions"] == predictions(reference, x)
    assert (report["model_id"], report["policy"], report["samples"]) == (model_id, "none", 20)
    assert report["calls_per_host"] == {edge.address: report["calls_per_host"][edge.address]}
    assert 0 <= report["accuracy"] <= 1 and report["tokens_per_s"] > 0


def test_bmoe_infer_names_a_model_that_does_not_exist(network):
    result = subprocess.run(
        [sys.executable, "-m", "bmoe_py.cli.main", "infer", "--model", "999", "--dataset", "digits"],
        env=network.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "bmoe infer: error: chain" in result.stderr and "has no model 999" in result.stderr
