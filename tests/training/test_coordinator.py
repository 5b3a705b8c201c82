"""The training coordinator end to end: a random-init Float model trained for a few rounds by two real `bmoe edge`
trainers over HTTP; each round registers new versions on chain and the registered model gets better."""
from __future__ import annotations

import pytest
import torch

from bmoe_py.experiments.localnet import PUBLISHER_KEY
from bmoe_py.model.data import load_dataset
from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.publisher.prepare import float_model_files
from bmoe_py.publisher.publish import PublishParams, publish_model
from bmoe_py.storage.client import IpfsClient
from bmoe_py.training.coordinator import Trainer, TrainingConfig, TrainingSession

EXPERTS = 4
ROUNDS = 3


@pytest.fixture(scope="module")
def trained(training_network):
    net = training_network
    chain, ipfs = net.connect(PUBLISHER_KEY), IpfsClient(net.ipfs_api, timeout=30)
    data = load_dataset("mnist1d")
    torch.manual_seed(0)
    config = MoEConfig(input_dim=40, num_classes=10, patch_size=8, patch_stride=4, d_model=32, d_hidden=64, num_experts=EXPERTS, k=2)
    model_id = publish_model(chain, ipfs, float_model_files(MoEModel(config)), PublishParams(challenge_window=600, tolerance=1000)).model_id
    nodes = [net.start_edge(f"trainer-{i}", model_id, list(range(EXPERTS))) for i in range(2)]
    trainers = {e: Trainer(nodes[e % 2].address, nodes[e % 2].url) for e in range(EXPERTS)}
    session = TrainingSession(
        chain, ipfs, model_id, trainers, data,
        TrainingConfig(rounds=ROUNDS, steps_per_round=12, batch_size=64, expert_lr=1e-2, local_lr=1e-2, eval_samples=1000),
    )  # fmt: skip
    before = session.evaluate()[0]
    results = list(session.run())
    session.close()
    return chain, model_id, trainers, before, results


def test_rounds_raise_the_test_accuracy_well_above_chance(trained):
    _, _, _, before, results = trained
    assert results[-1].accuracy > max(before, 0.1) + 0.1


def test_every_round_registers_the_next_version_of_every_expert(trained):
    chain, model_id, _, _, results = trained
    assert [r.versions for r in results] == [{e: 1 + r for e in range(EXPERTS)} for r in range(1, ROUNDS + 1)]
    assert [chain.call(chain.registry.functions.latestVersion(model_id, e)) for e in range(EXPERTS)] == [1 + ROUNDS] * EXPERTS


def test_the_trainers_are_named_on_chain(trained):
    chain, model_id, trainers, _, _ = trained
    for e, trainer in trainers.items():
        assert chain.call(chain.registry.functions.trainerOf(model_id, e)).lower() == trainer.address.lower()


def test_round_results_record_the_expert_load(trained):
    results = trained[4]
    for r in results:
        assert len(r.load) == EXPERTS and sum(r.load) == pytest.approx(1.0)
        assert r.imbalance_max_mean >= 1.0 and r.imbalance_cv >= 0.0


def test_every_round_changes_the_weights_of_every_expert(trained):
    """Each registered version holds new weights: a trainer whose updates did not take effect (its parameters
    frozen, say) would register the same root again, and validators replaying the round would find it wrong."""
    from bmoe_py.publisher.records import read_expert

    chain, model_id, _, _, _ = trained
    for e in range(EXPERTS):
        roots = [read_expert(chain, model_id, e, v).weights_root for v in range(1, ROUNDS + 2)]
        assert len(set(roots)) == len(roots), f"expert {e}: versions with equal weights"
