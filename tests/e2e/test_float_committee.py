"""Float models: publishing one (mode Float, a tolerance, bmoe-expert-f32/1 files), loading its experts back verified,
and the committee vote of validators on a challenged float token (docs/protocol.md 6).

Real parts: brownie's anvil with the deployed suite, a `bmoe ipfs daemon`, validators as in-process `Validator`s
with their own keys, stakes and SQLite state; chain time travels with evm_increaseTime between the vote phases.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.publisher.fetch import WeightsMismatch, load_float_expert_from_chain
from bmoe_py.publisher.prepare import float_model_files
from bmoe_py.publisher.publish import PublishError, PublishParams, publish_model
from bmoe_py.publisher.records import LayerSpec, Mode, read_model
from bmoe_py.validator.service import Validator, ValidatorConfig
from bmoe_py.validator.store import ValidatorStore
from scripted_node import ETHER, ScriptedNode, create_task, fresh_key
from scripted_node import model_id as exact_model_id, travel  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(120)
TOLERANCE = 1000  # 0.1 % of the output's scale
FRAUD, HONEST = 1, 2  # ICommitteeDispute.Outcome


def float_moe(seed: int = 1) -> MoEModel:
    torch.manual_seed(seed)
    return MoEModel(MoEConfig(input_dim=8, num_classes=3, d_model=8, d_hidden=16, num_experts=2, k=1))


@pytest.fixture(scope="module")
def model() -> MoEModel:
    return float_moe()


@pytest.fixture(scope="module")
def float_model_id(network, ipfs, model) -> int:
    return publish_model(network.chain(), ipfs, float_model_files(model), PublishParams(tolerance=TOLERANCE)).model_id


@pytest.fixture(scope="module")
def expert(network, ipfs, float_model_id):
    return load_float_expert_from_chain(network.chain(), ipfs, float_model_id, 0)


@pytest.fixture
def node(network, ipfs, float_model_id, accounts) -> ScriptedNode:
    node = ScriptedNode(network.chain(fresh_key(accounts[0])), ipfs, float_model_id)
    node.join([0])
    return node


@pytest.fixture
def window(network, node, float_model_id, expert):
    tokens = np.random.default_rng(5).normal(size=(4, 8)).astype(np.float32)
    return node.commit_float(create_task(network.chain(), float_model_id), 0, expert.forward, tokens, manipulate=(2,))


@pytest.fixture
def make_validators(network, ipfs, float_model_id, accounts, tmp_path):
    """`make_validators(from_block)`: three validators with 1 ETH of stake each, in the validator set, watching
    commitments from `from_block`."""
    made = []

    def make(from_block: int) -> list[Validator]:
        for i in range(3):
            store = ValidatorStore(tmp_path / f"validator-{i}.sqlite")
            config = ValidatorConfig(float_model_id, sample_rate=1.0, from_block=from_block)
            validator = Validator(network.chain(fresh_key(accounts[0])), ipfs, store, config)
            validator.committee.join(stake=ETHER)
            made.append(validator)
        return made

    yield make
    for validator in made:
        validator.store.close()


@pytest.fixture
def validators(network, make_validators, window):
    """Validators that watch only blocks after the commitment: the test is the challenger, they only vote."""
    return make_validators(network.chain().w3.eth.block_number + 1)


def challenge(chain, window, position: int) -> int:
    token = window.bundle.token(position)
    bond = chain.call(chain.committee.functions.bond())
    receipt = chain.send(
        chain.committee.functions.challenge(window.commitment.as_tuple(), token.leaf.as_tuple(), token.proof), value=bond
    )
    return int(chain.events(receipt, "CommitteeDispute", "Challenged")[0]["disputeId"])


def run_vote(validators, web3, chain, dispute: int) -> None:
    """Passes of every validator through draw, commit, reveal and finalize, travelling over each window."""
    for _ in range(2):  # the seed is the hash of the block after the challenge's, readable from the one after
        web3.provider.make_request("evm_mine", [])
    for _ in range(2):  # draw, then vote
        for v in validators:
            v.run_once()
    travel(web3, chain.call(chain.committee.functions.dispute(dispute))[7] - web3.eth.get_block("latest")["timestamp"] + 1)
    for v in validators:
        v.run_once()  # reveal
    travel(web3, chain.call(chain.committee.functions.dispute(dispute))[8] - web3.eth.get_block("latest")["timestamp"] + 1)
    for v in validators:
        v.run_once()  # finalize, claim


# ------------------------------------------------------------------------------------------- publishing


def test_a_float_model_is_registered_in_mode_float_with_its_tolerance(network, float_model_id, model):
    record = read_model(network.chain(), float_model_id)
    assert (record.mode, record.tolerance, record.expert_count) == (Mode.FLOAT, TOLERANCE, 2)
    assert record.experts[0].layers == (LayerSpec(8, 16, 0, 0, False), LayerSpec(16, 8, 0, 0, False))


def test_a_published_float_expert_loads_back_and_computes_as_the_original(expert, model):
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with torch.no_grad():
        assert np.array_equal(expert.forward(x), model.blocks[0].experts[0](torch.from_numpy(x)).numpy())


def test_a_float_model_without_a_tolerance_is_refused_before_anything_is_sent(network, ipfs):
    chain = network.chain()
    before = chain.call(chain.registry.functions.modelCount())
    with pytest.raises(PublishError, match="a float model needs a tolerance"):
        publish_model(chain, ipfs, float_model_files(float_moe(2)))
    assert chain.call(chain.registry.functions.modelCount()) == before


def test_an_exact_model_is_not_loaded_as_a_float_one(network, ipfs, exact_model_id):
    with pytest.raises(WeightsMismatch, match="the model is exact"):
        load_float_expert_from_chain(network.chain(), ipfs, exact_model_id, 0)


# ------------------------------------------------------------------------------------------- committee


def test_a_committee_votes_fraud_on_a_manipulated_float_token_and_the_node_is_slashed(network, node, window, validators, web3):
    chain = network.chain()
    dispute = challenge(chain, window, 2)
    run_vote(validators, web3, chain, dispute)
    state = chain.call(chain.committee.functions.dispute(dispute))
    assert (state[10], state[11], state[12]) == (FRAUD, 3 * ETHER, 0)  # outcome, fraud stake, honest stake
    assert chain.call(chain.staking.functions.stakeOf(node.address)) == 0
    for v in validators:
        assert v.store.vote(dispute).fraud and v.store.vote(dispute).revealed
        assert chain.call(chain.committee.functions.claimable(v.chain.address)) == 0  # reward claimed


def test_a_committee_votes_honest_on_a_float_token_within_tolerance(network, node, window, validators, web3):
    chain = network.chain()
    dispute = challenge(chain, window, 0)
    run_vote(validators, web3, chain, dispute)
    state = chain.call(chain.committee.functions.dispute(dispute))
    assert (state[10], state[11], state[12]) == (HONEST, 0, 3 * ETHER)
    assert chain.call(chain.staking.functions.stakeOf(node.address)) == ETHER


def test_a_validator_that_finds_a_wrong_float_token_challenges_it_and_the_others_convict(
    network, node, window, make_validators, web3
):
    chain = network.chain()
    validators = make_validators(0)
    validators[0].run_once()  # checks the commitment, finds token 2 wrong, opens a committee dispute
    (row,) = validators[0].store.disputes()
    assert (row.module, row.position) == ("committee", 2)
    run_vote(validators, web3, chain, row.dispute_id)
    assert chain.call(chain.committee.functions.dispute(row.dispute_id))[10] == FRAUD
    assert chain.call(chain.staking.functions.stakeOf(node.address)) == 0
    (row,) = validators[0].store.disputes()
    assert (row.outcome, row.done) == ("fraud", True)  # the challenger's reward is claimed
    assert [v.store.disputes() for v in validators[1:]] == [[], []]  # the leaf was taken: no second dispute


def test_show_verify_accepts_every_file_of_a_float_model(network, float_model_id):
    shown = subprocess.run(
        [sys.executable, "-m", "bmoe_py", "model", "show", str(float_model_id), "--verify", "--json"],
        env=network.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    assert report["gate"]["check"] == "ok"
    assert {e["check"] for e in report["experts"]} == {"ok"}
