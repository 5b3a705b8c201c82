"""Validators verify training windows (docs/protocol.md 11): they replay a trainer's recorded steps from the round's
base version, compare a sample of them (every step of a node that screening flagged on chain), challenge a wrong
step through CommitteeDispute, and committee members judge the step with `records.judge_step`.

Real parts: brownie's anvil with the deployed suite (Screening included), a `bmoe ipfs daemon`, a trainer played by
the test (tests/scripted_trainer.py) that publishes its checkpoint as the expert's trainer and commits its window,
and in-process `Validator`s with their own keys, stakes and SQLite state.
"""
from __future__ import annotations

import pytest
import torch

from bmoe_py.model.moe import MoEConfig, MoEModel
from bmoe_py.publisher.fetch import load_float_expert_from_chain
from bmoe_py.publisher.prepare import float_model_files
from bmoe_py.publisher.publish import PublishParams, publish_model
from bmoe_py.validator.service import Validator, ValidatorConfig
from bmoe_py.validator.store import ValidatorStore
from scripted_node import ETHER, create_task, fresh_key, travel
from scripted_trainer import commit_round, tampered, train_round

pytestmark = pytest.mark.timeout(120)
TOLERANCE = 1000
STEPS, TOKENS = 6, 4
FRAUD = 1  # ICommitteeDispute.Outcome
REASON = b"robust-z:grad_norm".ljust(32, b"\0")


@pytest.fixture(scope="module")
def model_id(network, ipfs) -> int:
    torch.manual_seed(3)
    model = MoEModel(MoEConfig(input_dim=8, num_classes=3, d_model=8, d_hidden=16, num_experts=2, k=1))
    return publish_model(network.chain(), ipfs, float_model_files(model), PublishParams(tolerance=TOLERANCE)).model_id


@pytest.fixture(scope="module")
def base(network, ipfs, model_id):
    """Version 1 of expert 0: the round's base version."""
    return load_float_expert_from_chain(network.chain(), ipfs, model_id, 0, 1).expert


@pytest.fixture
def trainer(network, model_id, accounts):
    """A staked host of expert 0 that the model owner named its trainer."""
    chain = network.chain(fresh_key(accounts[0]))
    chain.send(chain.staking.functions.deposit(), value=ETHER)
    chain.send(chain.registry.functions.registerHost(model_id, 0, "http://127.0.0.1:1/0"))
    owner = network.chain()
    owner.send(owner.registry.functions.setTrainer(model_id, 0, chain.address))
    return chain


@pytest.fixture
def commit(network, ipfs, model_id, base, trainer):
    """`commit(manipulate=(), checkpoint=None)`: one round of STEPS steps by the trainer, committed."""

    def run(manipulate: tuple[int, ...] = (), checkpoint=None):
        steps, trained = train_round(base, STEPS, TOKENS, manipulate=manipulate)
        task = create_task(network.chain(), model_id)
        return commit_round(trainer, ipfs, model_id, 0, task, 1, steps, checkpoint or trained)

    return run


@pytest.fixture
def make_validators(network, ipfs, model_id, accounts, tmp_path):
    """`make_validators(count, rate, committee)`: validators watching from the current block."""
    made = []

    def make(count: int = 1, rate: float = 1.0, committee: bool = False) -> list[Validator]:
        start = network.chain().w3.eth.block_number
        for _ in range(count):
            store = ValidatorStore(tmp_path / f"validator-{len(made)}.sqlite")
            config = ValidatorConfig(model_id, sample_rate=rate, from_block=start, committee=committee)
            validator = Validator(network.chain(fresh_key(accounts[0])), ipfs, store, config)
            if committee:
                validator.committee.join(stake=ETHER)
            made.append(validator)
        return made

    yield make
    for validator in made:
        validator.store.close()


def checked(validator: Validator, window) -> dict[int, bool]:
    return validator.store.samples(window.commitment.id())


def run_vote(validators, web3, chain, dispute: int) -> None:
    """Passes of every validator through draw, commit, reveal and finalize, travelling over each window."""
    for _ in range(2):  # the seed block, then one to read it from
        web3.provider.make_request("evm_mine", [])
    for _ in range(2):  # draw, then vote
        for v in validators:
            v.run_once()
    for deadline in (7, 8):  # commit deadline, then reveal deadline
        now = web3.eth.get_block("latest")["timestamp"]
        travel(web3, chain.call(chain.committee.functions.dispute(dispute))[deadline] - now + 1)
        for v in validators:
            v.run_once()


def test_an_honest_training_window_passes_every_check_and_is_not_challenged(commit, make_validators):
    (validator,) = make_validators()
    window = commit()
    validator.run_once()
    assert checked(validator, window) == {s: True for s in range(STEPS)}
    assert validator.store.status(window.commitment.id()) == "ok"
    assert validator.store.disputes() == []
    assert validator.checker.correct(window.bundle, STEPS - 1) is True  # the committee's judgement agrees


def test_a_registered_checkpoint_that_is_not_the_trained_one_makes_the_last_step_wrong(commit, base, make_validators):
    (validator,) = make_validators()
    _, trained = train_round(base, STEPS, TOKENS)
    window = commit(checkpoint=tampered(trained))
    validator.run_once()
    assert [s for s, ok in checked(validator, window).items() if not ok] == [STEPS - 1]
    # a committee member's judgement (records.judge_step) of the last step agrees
    assert validator.checker.correct(window.bundle, STEPS - 1) is False


def test_an_unflagged_trainer_gets_ceil_p_times_s_steps_checked(commit, make_validators):
    (validator,) = make_validators(rate=0.25)
    window = commit()
    validator.run_once()
    assert len(checked(validator, window)) == 2  # ceil(0.25 * 6)
    assert (validator.stats.training_windows, validator.stats.priority) == (1, 0)


def test_a_trainer_flagged_by_screening_gets_every_step_checked(network, commit, trainer, model_id, make_validators):
    owner = network.chain()
    owner.send(owner.screening.functions.flag(model_id, trainer.address, 1, REASON, 4_000_000))
    (validator,) = make_validators(rate=0.01)
    window = commit()
    validator.run_once()
    assert sorted(checked(validator, window)) == list(range(STEPS))
    assert (validator.stats.training_windows, validator.stats.priority) == (1, 1)


def test_a_manipulated_step_is_challenged_and_the_committee_convicts_the_trainer(network, commit, trainer, make_validators, web3):
    chain = network.chain()
    validators = make_validators(count=3, committee=True)
    window = commit(manipulate=(3,))
    validators[0].run_once()  # replays, finds step 3 wrong, challenges its leaf
    (row,) = validators[0].store.disputes()
    assert (row.module, row.position) == ("committee", 3)
    run_vote(validators, web3, chain, row.dispute_id)
    assert chain.call(chain.committee.functions.dispute(row.dispute_id))[10] == FRAUD
    assert chain.call(chain.staking.functions.stakeOf(trainer.address)) == 0
    for v in validators:
        vote = v.store.vote(row.dispute_id)
        assert vote is None or vote.fraud  # every member drawn voted fraud
