"""An edge node trains the float expert it is the trainer of over HTTP (docs/protocol.md 11.2): its forward and
backward answers are the protocol's step, `finish` registers the resulting checkpoint as the expert's next version
and commits the round's training bundle, and the node then serves the new version. Steps out of order and calls
for an expert the node does not train are refused; an attacking trainer's manipulated outputs are what its bundle
records.

Real parts: brownie's anvil with the deployed suite, a `bmoe ipfs daemon`, two `bmoe edge` processes (one honest,
one attacking), the coordinator's side played here through `TrainerClient`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from eth_account import Account

from bmoe_py.crypto.commitments import Commitment
from bmoe_py.model.moe import Expert, MoEConfig, MoEModel
from bmoe_py.protocol.training_wire import TrainBackwardResponse, TrainFinishResponse, TrainForwardResponse
from bmoe_py.publisher.fetch import load_float_expert_from_chain
from bmoe_py.publisher.prepare import float_model_files
from bmoe_py.publisher.publish import PublishParams, publish_model
from bmoe_py.publisher.records import read_expert
from bmoe_py.training.client import TrainerClient, TrainerError
from bmoe_py.training.records import (
    TrainWindowBundle,
    checkpoint_root,
    forward,
    judge_step,
    make_optimizer,
    train_step,
)

from edge_client import create_task, forward as infer
from edge_nodes import EdgeProcess, start_edge
from scripted_node import travel

pytestmark = pytest.mark.timeout(180)
TOLERANCE = 1000  # millionths
CHALLENGE_WINDOW = 8  # seconds
ETHER = 10**18
STEPS, TOKENS, D_MODEL = 3, 6, 8
LRS = (0.01, 0.005, 0.02)
HONEST_EXPERT, ATTACKED_EXPERT, UNTRAINED_EXPERT = 0, 1, 2


def _key(accounts) -> str:
    account = Account.create()
    accounts[0].transfer(account.address, 10 * ETHER)
    return "0x" + bytes(account.key).hex()


@pytest.fixture(scope="module")
def owner_key(accounts) -> str:
    return _key(accounts)


@pytest.fixture(scope="module")
def float_model_id(network, ipfs, owner_key) -> int:
    """A float model of three 8 -> 16 -> 8 experts, owned by `owner_key` (the coordinator)."""
    torch.manual_seed(3)
    model = MoEModel(MoEConfig(input_dim=8, num_classes=3, d_model=D_MODEL, d_hidden=16, num_experts=3, k=1))
    params = PublishParams(tolerance=TOLERANCE, challenge_window=CHALLENGE_WINDOW)
    return publish_model(network.chain(owner_key), ipfs, float_model_files(model), params).model_id


ATTACK = {"attack": "gaussian", "attack_strength": 1.0, "attack_fraction": 1.0, "attack_seed": 7}


@dataclass
class Nodes:
    honest: EdgeProcess
    attacker: EdgeProcess
    attacker_key: str
    tmp: Path

    def __getitem__(self, i: int) -> EdgeProcess:
        return (self.honest, self.attacker)[i]


@pytest.fixture(scope="module")
def nodes(network, float_model_id, owner_key, accounts, tmp_path_factory):
    """The honest node hosts experts 0 and 2 and trains 0; the attacking one (gaussian noise on every output) hosts
    and trains expert 1. Nobody trains expert 2. Windows of an hour: the nodes commit nothing but their rounds."""
    tmp = tmp_path_factory.mktemp("training")
    honest = start_edge(network.env(), float_model_id, [HONEST_EXPERT, UNTRAINED_EXPERT], _key(accounts), tmp,
                        window_seconds=3600)  # fmt: skip
    attacker_key = _key(accounts)
    attacker = start_edge(network.env(), float_model_id, [ATTACKED_EXPERT], attacker_key, tmp, window_seconds=3600, **ATTACK)
    owner = network.chain(owner_key)
    for expert, node in ((HONEST_EXPERT, honest), (ATTACKED_EXPERT, attacker)):
        owner.send(owner.registry.functions.setTrainer(float_model_id, expert, node.address))
    started = Nodes(honest, attacker, attacker_key, tmp)
    yield started
    for node in (started.honest, started.attacker):
        assert node.stop() == 0, node.log


@dataclass
class Round:
    """What the coordinator sent and got in one round of one expert."""

    task_id: int
    expert: int
    inputs: list[np.ndarray]
    grad_outputs: list[np.ndarray]
    forwards: list[TrainForwardResponse]
    backwards: list[TrainBackwardResponse]
    finish: TrainFinishResponse


def _train(network, model_id: int, owner_key: str, url: str, expert: int, seed: int) -> Round:
    chain = network.chain(owner_key)
    task = create_task(chain, model_id)
    client = TrainerClient(url)
    rng = np.random.default_rng(seed)
    inputs, grads, forwards, backwards = [], [], [], []
    for step, lr in enumerate(LRS):
        x = rng.standard_normal((TOKENS, D_MODEL)).astype(np.float32)
        forwards.append(client.forward(task, model_id, expert, 1, 1, step, x))
        grad_y = rng.standard_normal((TOKENS, D_MODEL)).astype(np.float32)
        backwards.append(client.backward(task, model_id, expert, 1, 1, step, lr, grad_y))
        inputs.append(x)
        grads.append(grad_y)
    return Round(task, expert, inputs, grads, forwards, backwards, client.finish(task, model_id, expert, 1, 1))


@pytest.fixture(scope="module")
def base_experts(network, ipfs, float_model_id) -> dict[int, Expert]:
    """Version 1 of every expert, read before any round (the rounds' base)."""
    chain = network.chain()
    return {e: load_float_expert_from_chain(chain, ipfs, float_model_id, e, 1).expert for e in range(3)}


@pytest.fixture(scope="module")
def honest_round(network, web3, float_model_id, owner_key, nodes, base_experts) -> Round:
    """The honest node's round 1, finalized and paid: its transactions happen here, before brownie's snapshot of
    the first test, so that no revert takes them back."""
    done = _train(network, float_model_id, owner_key, nodes.honest.url, HONEST_EXPERT, seed=1)
    travel(web3, CHALLENGE_WINDOW + 1)
    nodes.honest.wait_for_log("from the ledger", timeout=30)  # finalized, then claimed
    return done


@pytest.fixture(scope="module")
def attacked_round(network, float_model_id, owner_key, nodes, base_experts) -> Round:
    return _train(network, float_model_id, owner_key, nodes[1].url, ATTACKED_EXPERT, seed=2)


def _replay(base: Expert, done: Round) -> tuple[list[np.ndarray], list[np.ndarray], Expert]:
    """The protocol's steps on the sent inputs, gradients and learning rates: (outputs, input gradients, final)."""
    expert = copy.deepcopy(base)
    optimizer = make_optimizer(expert)
    outputs, grad_inputs = [], []
    for x, grad_y, lr in zip(done.inputs, done.grad_outputs, LRS):
        outputs.append(forward(expert, x))
        grad_inputs.append(train_step(expert, optimizer, x, grad_y, lr))
    return outputs, grad_inputs, expert


def _bundle(ipfs, done: Round) -> TrainWindowBundle:
    return TrainWindowBundle.decode(ipfs.cat(done.finish.bundle_cid))


def test_forward_and_backward_answer_the_protocol_step(base_experts, honest_round):
    outputs, grad_inputs, _ = _replay(base_experts[HONEST_EXPERT], honest_round)
    for step in range(STEPS):
        np.testing.assert_array_equal(honest_round.forwards[step].outputs, outputs[step])
        np.testing.assert_array_equal(honest_round.backwards[step].grad_inputs, grad_inputs[step])


def test_backward_reports_the_step_statistics(honest_round):
    for backward in honest_round.backwards:
        stats = backward.stats
        assert stats.grad_norm > 0 and stats.update_norm > 0 and stats.param_norm > 0
        np.testing.assert_allclose(stats.output_norm, np.linalg.norm(honest_round.forwards[backward.step].outputs), rtol=1e-6)


def test_finish_registers_the_replayed_checkpoint_as_the_next_version(network, ipfs, float_model_id, nodes,
                                                                      base_experts, honest_round):  # fmt: skip
    finish = honest_round.finish
    _, _, final = _replay(base_experts[HONEST_EXPERT], honest_round)
    assert (finish.round, finish.steps, finish.tokens, finish.next_version) == (1, STEPS, STEPS * TOKENS, 2)
    record = read_expert(network.chain(), float_model_id, HONEST_EXPERT)
    assert (record.version, record.weights_cid, record.weights_root) == (2, finish.weights_cid, finish.weights_root)
    assert finish.weights_root == checkpoint_root(final)
    registered = load_float_expert_from_chain(network.chain(), ipfs, float_model_id, HONEST_EXPERT, 2).expert
    for name, value in final.state_dict().items():
        torch.testing.assert_close(registered.state_dict()[name], value, rtol=0, atol=0)


def test_finish_commits_the_round_bundle_to_the_training_task(network, ipfs, float_model_id, nodes, honest_round):
    chain = network.chain()
    logs = chain.ledger.events.CommitmentPosted().get_logs(
        from_block=0, argument_filters={"node": nodes[0].address, "taskId": honest_round.task_id}
    )
    (commitment,) = [entry["args"]["commitment"] for entry in logs]
    assert bytes(commitment["root"]) == honest_round.finish.root
    assert (commitment["expertIndex"], commitment["expertVersion"], commitment["tokenCount"]) == (HONEST_EXPERT, 1, STEPS * TOKENS)
    assert logs[0]["args"]["bundleCid"] == honest_round.finish.bundle_cid
    bundle = _bundle(ipfs, honest_round)
    assert bundle.root == honest_round.finish.root
    assert (bundle.node, bundle.task_id, bundle.round, bundle.next_version) == (nodes[0].address, honest_round.task_id, 1, 2)
    for step, recorded in enumerate(bundle.steps):
        np.testing.assert_array_equal(recorded.outputs, honest_round.forwards[step].outputs)
        np.testing.assert_array_equal(recorded.grad_inputs, honest_round.backwards[step].grad_inputs)


def test_the_rounds_commitment_is_finalized_and_paid_to_the_trainer(network, nodes, honest_round):
    chain = network.chain()
    logs = chain.ledger.events.CommitmentPosted().get_logs(
        from_block=0, argument_filters={"node": nodes.honest.address, "taskId": honest_round.task_id}
    )
    commitment = Commitment.from_event(logs[0]["args"]["commitment"])
    status, _ = chain.call(chain.ledger.functions.commitmentState(commitment.id()))
    assert status == 2  # Finalized
    finalized = chain.ledger.events.CommitmentFinalized().get_logs(from_block=0)
    assert [int(e["args"]["payment"]) for e in finalized if bytes(e["args"]["commitmentId"]) == commitment.id()] == [
        STEPS * TOKENS * 10**9  # the round's tokens at the task's price (1 gwei)
    ]  # fmt: skip
    assert chain.call(chain.ledger.functions.claimable(nodes.honest.address)) == 0


def test_every_step_of_an_honest_round_is_judged_honest(network, ipfs, float_model_id, base_experts, honest_round):
    bundle = _bundle(ipfs, honest_round)
    registered = load_float_expert_from_chain(network.chain(), ipfs, float_model_id, HONEST_EXPERT, 2).expert
    for position in range(STEPS):
        verdict = judge_step(copy.deepcopy(base_experts[HONEST_EXPERT]), bundle, position, TOLERANCE, registered)
        assert not verdict.fraud, verdict.reason


def test_finishing_a_finished_round_again_answers_the_same_result(float_model_id, nodes, honest_round):
    again = TrainerClient(nodes[0].url).finish(honest_round.task_id, float_model_id, HONEST_EXPERT, 1, 1)
    assert again == honest_round.finish


def test_after_finish_the_node_serves_the_new_version(network, ipfs, float_model_id, nodes, honest_round):
    chain = network.chain()
    x = np.random.default_rng(9).standard_normal((4, D_MODEL)).astype(np.float32)
    response = infer(nodes[0].url, chain, create_task(chain, float_model_id), float_model_id, HONEST_EXPERT, x)
    assert response.receipt.expert_version == 2
    new = load_float_expert_from_chain(chain, ipfs, float_model_id, HONEST_EXPERT, 2)
    np.testing.assert_allclose(response.outputs, new.forward(x), rtol=1e-6, atol=1e-6)


def test_health_says_which_experts_the_node_trains_and_their_round(nodes, honest_round):
    experts = {e["index"]: e for e in requests.get(nodes[0].url + "/v1/health", timeout=10).json()["experts"]}
    assert (experts[HONEST_EXPERT]["trainer"], experts[HONEST_EXPERT]["last_finished_round"]) == (True, 1)
    assert (experts[HONEST_EXPERT]["train_round"], experts[HONEST_EXPERT]["train_status"]) == (1, "done")
    assert experts[UNTRAINED_EXPERT]["trainer"] is False and experts[UNTRAINED_EXPERT]["train_round"] is None


def _refusal(call) -> TrainerError:
    with pytest.raises(TrainerError) as info:
        call()
    return info.value


def test_a_step_out_of_order_is_refused_and_the_node_keeps_serving(network, float_model_id, nodes, honest_round):
    client, task = TrainerClient(nodes[0].url), honest_round.task_id
    x = np.zeros((2, D_MODEL), np.float32)
    skipped = _refusal(lambda: client.forward(task, float_model_id, HONEST_EXPERT, 2, 2, 1, x))
    finished = _refusal(lambda: client.forward(task, float_model_id, HONEST_EXPERT, 2, 1, 0, x))
    old_base = _refusal(lambda: client.forward(task, float_model_id, HONEST_EXPERT, 1, 2, 0, x))
    no_forward = _refusal(lambda: client.backward(task, float_model_id, HONEST_EXPERT, 2, 2, 0, 0.1, x))
    for refusal in (skipped, finished, old_base, no_forward):
        assert (refusal.status, refusal.code) == (409, "out_of_order"), refusal
    chain = network.chain()
    response = infer(nodes[0].url, chain, create_task(chain, float_model_id), float_model_id, HONEST_EXPERT, x)
    assert response.outputs.shape == (2, D_MODEL)


def test_a_node_that_is_not_the_experts_trainer_is_refused(network, float_model_id, owner_key, nodes):
    task = create_task(network.chain(owner_key), float_model_id)
    x = np.zeros((2, D_MODEL), np.float32)
    refusal = _refusal(lambda: TrainerClient(nodes[0].url).forward(task, float_model_id, UNTRAINED_EXPERT, 1, 1, 0, x))
    assert (refusal.status, refusal.code) == (403, "not_trainer")


def test_an_attacking_trainer_returns_manipulated_outputs_and_its_bundle_records_them(ipfs, base_experts, attacked_round):
    outputs, _, _ = _replay(base_experts[ATTACKED_EXPERT], attacked_round)
    bundle = _bundle(ipfs, attacked_round)
    for step in range(STEPS):
        returned = attacked_round.forwards[step].outputs
        assert np.abs(returned - outputs[step]).max() > 0.1
        np.testing.assert_array_equal(bundle.steps[step].outputs, returned)
    verdict = judge_step(copy.deepcopy(base_experts[ATTACKED_EXPERT]), bundle, 0, TOLERANCE)
    assert verdict.fraud and "outputs" in verdict.reason


def test_a_round_whose_task_was_closed_is_registered_but_not_committed(network, float_model_id, owner_key, nodes,
                                                                       honest_round):  # fmt: skip
    """The checkpoint is on chain (and served) whatever happens to the payment; the finish answers 422."""
    chain = network.chain(owner_key)
    task = create_task(chain, float_model_id)
    client = TrainerClient(nodes.honest.url)
    x = np.ones((2, D_MODEL), np.float32)
    client.forward(task, float_model_id, HONEST_EXPERT, 2, 2, 0, x)
    client.backward(task, float_model_id, HONEST_EXPERT, 2, 2, 0, 0.01, x)
    chain.send(chain.ledger.functions.closeTask(task))
    refusal = _refusal(lambda: client.finish(task, float_model_id, HONEST_EXPERT, 2, 2))
    assert (refusal.status, refusal.code) == (422, "unknown_task"), refusal
    assert read_expert(chain, float_model_id, HONEST_EXPERT).version == 3
    experts = {e["index"]: e for e in requests.get(nodes.honest.url + "/v1/health", timeout=10).json()["experts"]}
    assert (experts[HONEST_EXPERT]["version"], experts[HONEST_EXPERT]["train_status"]) == (3, "failed")

def test_a_trainer_restarted_mid_round_continues_it_where_it_stopped(network, ipfs, float_model_id, owner_key, nodes,
                                                                     attacked_round):  # fmt: skip
    """Killed (SIGKILL) between a forward and its backward, the node rebuilds the round from its database: the
    backward after the restart and the rest of the round are what an uninterrupted trainer computes."""
    chain = network.chain(owner_key)
    task = create_task(chain, float_model_id)
    base = load_float_expert_from_chain(chain, ipfs, float_model_id, ATTACKED_EXPERT, 2).expert
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((TOKENS, D_MODEL)).astype(np.float32) for _ in LRS]
    grads = [rng.standard_normal((TOKENS, D_MODEL)).astype(np.float32) for _ in LRS]
    client = TrainerClient(nodes.attacker.url)
    returned = []
    for step, lr in enumerate(LRS):
        client.forward(task, float_model_id, ATTACKED_EXPERT, 2, 2, step, xs[step])
        if step == 1:
            nodes.attacker.kill()
            nodes.attacker = start_edge(network.env(), float_model_id, [ATTACKED_EXPERT], nodes.attacker_key, nodes.tmp,
                                        window_seconds=3600, **ATTACK)  # fmt: skip
            client = TrainerClient(nodes.attacker.url)
        returned.append(client.backward(task, float_model_id, ATTACKED_EXPERT, 2, 2, step, lr, grads[step]).grad_inputs)
    finish = client.finish(task, float_model_id, ATTACKED_EXPERT, 2, 2)
    expert, optimizer = base, make_optimizer(base)
    for step, lr in enumerate(LRS):
        np.testing.assert_array_equal(returned[step], train_step(expert, optimizer, xs[step], grads[step], lr))
    assert (finish.next_version, finish.steps, finish.weights_root) == (3, STEPS, checkpoint_root(expert))
    assert "training round 2 of expert 1 restored: 1 steps replayed" in nodes.attacker.log
