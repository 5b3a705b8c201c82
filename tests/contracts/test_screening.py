"""Screening (docs/protocol.md section 11): the model owner records flags and blacklistings of training nodes."""
import pytest
from brownie import ExpertRegistry, Screening, Staking

from helpers import reverts_with

DELAY = 7 * 24 * 3600
LONGEST_DISPUTE = 2 * 24 * 3600 + 3600
ETH = 10**18
FLOAT = 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
REASON = "0x" + b"robust-z:grad_norm".hex().ljust(64, "0")
EVIDENCE = "0x" + "ee" * 32


@pytest.fixture(scope="module")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def node(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def stranger(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def registry(owner):
    staking = Staking.deploy(DELAY, {"from": owner})
    return ExpertRegistry.deploy(staking, LONGEST_DISPUTE, {"from": owner})


@pytest.fixture(scope="module")
def screening(registry, owner):
    return Screening.deploy(registry, {"from": owner})


@pytest.fixture(scope="module")
def model_id(registry, owner):
    params = (FLOAT, 2, 1000, 24 * 3600, 2 * ETH, ETH, "QmGate", "0x" + "11" * 32)
    return registry.registerModel(params, {"from": owner}).return_value


def test_deploying_without_a_registry_reverts(owner):
    with reverts_with("ZeroAddress()"):
        Screening.deploy(ZERO_ADDRESS, {"from": owner})


def test_a_node_starts_unflagged_and_not_blacklisted(screening, model_id, node):
    assert screening.flagCount(model_id, node) == 0
    assert screening.lastFlagRound(model_id, node) == 0
    assert not screening.isBlacklisted(model_id, node)


def test_flag_counts_records_the_round_and_emits(screening, owner, model_id, node):
    screening.flag(model_id, node, 3, REASON, 4_200_000, {"from": owner})
    tx = screening.flag(model_id, node, 5, REASON, 5_000_000, {"from": owner})
    assert screening.flagCount(model_id, node) == 2
    assert screening.lastFlagRound(model_id, node) == 5
    assert tx.events["Flagged"] == {
        "modelId": model_id,
        "node": node,
        "round": 5,
        "reason": REASON,
        "score": 5_000_000,
    }


def test_flags_are_per_model(registry, screening, owner, model_id, node):
    other = registry.registerModel(
        (FLOAT, 1, 1000, 24 * 3600, 2 * ETH, ETH, "QmGate", "0x" + "11" * 32), {"from": owner}
    ).return_value
    screening.flag(model_id, node, 1, REASON, 1, {"from": owner})
    assert screening.flagCount(other, node) == 0


def test_flag_by_non_owner_reverts(screening, stranger, model_id, node):
    with reverts_with("NotModelOwner(uint256,address)", model_id, stranger):
        screening.flag(model_id, node, 1, REASON, 1, {"from": stranger})


def test_flag_of_unknown_model_reverts_with_the_registry_error(screening, owner, node):
    with reverts_with("UnknownModel(uint256)", 9):
        screening.flag(9, node, 1, REASON, 1, {"from": owner})


def test_flag_of_zero_address_reverts(screening, owner, model_id):
    with reverts_with("ZeroAddress()"):
        screening.flag(model_id, ZERO_ADDRESS, 1, REASON, 1, {"from": owner})


def test_blacklist_records_and_emits(screening, owner, model_id, node):
    tx = screening.blacklist(model_id, node, EVIDENCE, {"from": owner})
    assert screening.isBlacklisted(model_id, node)
    assert tx.events["Blacklisted"] == {"modelId": model_id, "node": node, "evidence": EVIDENCE}


def test_blacklist_twice_reverts(screening, owner, model_id, node):
    screening.blacklist(model_id, node, EVIDENCE, {"from": owner})
    with reverts_with("AlreadyBlacklisted(uint256,address)", model_id, node):
        screening.blacklist(model_id, node, EVIDENCE, {"from": owner})


def test_blacklist_by_non_owner_reverts(screening, stranger, model_id, node):
    with reverts_with("NotModelOwner(uint256,address)", model_id, stranger):
        screening.blacklist(model_id, node, EVIDENCE, {"from": stranger})


def test_unblacklist_lifts_it_and_emits(screening, owner, model_id, node):
    screening.blacklist(model_id, node, EVIDENCE, {"from": owner})
    tx = screening.unblacklist(model_id, node, {"from": owner})
    assert not screening.isBlacklisted(model_id, node)
    assert tx.events["Unblacklisted"] == {"modelId": model_id, "node": node}


def test_unblacklist_of_a_node_not_blacklisted_reverts(screening, owner, model_id, node):
    with reverts_with("NotBlacklisted(uint256,address)", model_id, node):
        screening.unblacklist(model_id, node, {"from": owner})


def test_unblacklist_by_non_owner_reverts(screening, owner, stranger, model_id, node):
    screening.blacklist(model_id, node, EVIDENCE, {"from": owner})
    with reverts_with("NotModelOwner(uint256,address)", model_id, stranger):
        screening.unblacklist(model_id, node, {"from": stranger})


def test_the_new_model_owner_screens_after_a_transfer(registry, screening, owner, stranger, model_id, node):
    registry.transferModelOwnership(model_id, stranger, {"from": owner})
    screening.flag(model_id, node, 1, REASON, 1, {"from": stranger})
    with reverts_with("NotModelOwner(uint256,address)", model_id, owner):
        screening.flag(model_id, node, 2, REASON, 1, {"from": owner})
