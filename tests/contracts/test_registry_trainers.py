"""ExpertRegistry trainers (docs/protocol.md section 11): the owner names one trainer per expert, who may then
publish the expert's next versions with the same layer shapes."""
import pytest
from brownie import ExpertRegistry, Staking

from helpers import reverts_with

DELAY = 7 * 24 * 3600
LONGEST_DISPUTE = 2 * 24 * 3600 + 3600
ETH = 10**18
FLOAT = 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ROOT = "0x" + "22" * 32
LAYERS = [(8, 16, 0, 0, False), (16, 8, 0, 0, False)]


@pytest.fixture(scope="module")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def trainer(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def stranger(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def registry(owner):
    staking = Staking.deploy(DELAY, {"from": owner})
    return ExpertRegistry.deploy(staking, LONGEST_DISPUTE, {"from": owner})


@pytest.fixture(scope="module")
def model_id(registry, owner):
    """A float model with 2 experts; expert 0 has version 1."""
    params = (FLOAT, 2, 1000, 24 * 3600, 2 * ETH, ETH, "QmGate", "0x" + "11" * 32)
    model_id = registry.registerModel(params, {"from": owner}).return_value
    registry.publishExpert(model_id, 0, "QmV1", ROOT, LAYERS, {"from": owner})
    return model_id


@pytest.fixture
def trained(registry, owner, trainer, model_id):
    """`trainer` trains expert 0."""
    registry.setTrainer(model_id, 0, trainer, {"from": owner})
    return model_id


def test_an_expert_has_no_trainer_until_one_is_set(registry, model_id):
    assert registry.trainerOf(model_id, 0) == ZERO_ADDRESS


def test_set_trainer_records_the_trainer_and_emits(registry, owner, trainer, model_id):
    tx = registry.setTrainer(model_id, 1, trainer, {"from": owner})
    assert registry.trainerOf(model_id, 1) == trainer
    assert tx.events["TrainerSet"] == {"modelId": model_id, "expertIndex": 1, "trainer": trainer}


def test_set_trainer_to_zero_clears_it(registry, owner, trained):
    tx = registry.setTrainer(trained, 0, ZERO_ADDRESS, {"from": owner})
    assert registry.trainerOf(trained, 0) == ZERO_ADDRESS
    assert tx.events["TrainerSet"]["trainer"] == ZERO_ADDRESS


def test_set_trainer_by_non_owner_reverts(registry, stranger, model_id):
    with reverts_with("NotModelOwner(uint256,address)", model_id, stranger):
        registry.setTrainer(model_id, 0, stranger, {"from": stranger})


def test_set_trainer_of_unknown_expert_reverts(registry, owner, trainer, model_id):
    with reverts_with("UnknownExpert(uint256,uint32)", model_id, 2):
        registry.setTrainer(model_id, 2, trainer, {"from": owner})


def test_trainer_of_unknown_model_reverts(registry):
    with reverts_with("UnknownModel(uint256)", 9):
        registry.trainerOf(9, 0)


def test_trainer_publishes_the_next_version(registry, trainer, trained):
    tx = registry.publishExpert(trained, 0, "QmV2", "0x" + "33" * 32, LAYERS, {"from": trainer})
    assert tx.return_value == 2
    assert tuple(registry.expertVersion(trained, 0, 2))[:2] == ("QmV2", "0x" + "33" * 32)
    assert tx.events["ExpertPublished"]["version"] == 2


def test_trainer_cannot_change_a_layer_shape(registry, trainer, trained):
    reshaped = [LAYERS[0], (16, 4, 0, 0, False)]
    with reverts_with("TrainerShapeMismatch(uint256)", 1):
        registry.publishExpert(trained, 0, "QmV2", ROOT, reshaped, {"from": trainer})


def test_trainer_cannot_change_the_layer_count(registry, trainer, trained):
    with reverts_with("TrainerShapeMismatch(uint256)", 1):
        registry.publishExpert(trained, 0, "QmV2", ROOT, [(8, 8, 0, 0, False)], {"from": trainer})


def test_trainer_cannot_publish_a_first_version(registry, owner, trainer, model_id):
    registry.setTrainer(model_id, 1, trainer, {"from": owner})
    with reverts_with("UnknownVersion(uint256,uint32,uint32)", model_id, 1, 0):
        registry.publishExpert(model_id, 1, "QmV1", ROOT, LAYERS, {"from": trainer})


def test_trainer_of_one_expert_cannot_publish_another(registry, owner, trainer, trained):
    registry.publishExpert(trained, 1, "QmV1", ROOT, LAYERS, {"from": owner})
    with reverts_with("NotOwnerOrTrainer(uint256,uint32,address)", trained, 1, trainer):
        registry.publishExpert(trained, 1, "QmV2", ROOT, LAYERS, {"from": trainer})


def test_cleared_trainer_can_no_longer_publish(registry, owner, trainer, trained):
    registry.setTrainer(trained, 0, ZERO_ADDRESS, {"from": owner})
    with reverts_with("NotOwnerOrTrainer(uint256,uint32,address)", trained, 0, trainer):
        registry.publishExpert(trained, 0, "QmV2", ROOT, LAYERS, {"from": trainer})


def test_owner_may_still_reshape_a_trained_expert(registry, owner, trained):
    tx = registry.publishExpert(trained, 0, "QmV2", ROOT, [(8, 4, 0, 0, False)], {"from": owner})
    assert tx.return_value == 2
