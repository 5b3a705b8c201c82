"""ExpertRegistry: models, expert versions (weights CID, root and layer shapes) and the staked hosts of experts."""
import pytest
from brownie import ExpertRegistry, Staking

from helpers import reverts_with

DELAY = 7 * 24 * 3600
LONGEST_DISPUTE = 2 * 24 * 3600 + 3600
MAX_WINDOW = DELAY - LONGEST_DISPUTE - 1
ETH = 10**18
MIN_NODE_STAKE = 2 * ETH
MIN_VALIDATOR_STAKE = ETH
EXACT, FLOAT = 0, 1
ELIGIBLE, NOT_ACTIVE_HOST, UNKNOWN_VERSION = 0, 1, 2  # IExpertRegistry.Eligibility
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_ROOT = "0x" + "00" * 32
GATE_CID = "QmGateGateGateGateGateGateGateGateGateGateGate1"
GATE_ROOT = "0x" + "11" * 32
WEIGHTS_CID = "QmWeightsWeightsWeightsWeightsWeightsWeights01"
WEIGHTS_ROOT = "0x" + "22" * 32
ENDPOINT = "http://127.0.0.1:9000"


def model_params(
    mode=EXACT,
    expert_count=4,
    tolerance=0,
    challenge_window=24 * 3600,
    min_node_stake=MIN_NODE_STAKE,
    min_validator_stake=MIN_VALIDATOR_STAKE,
    gate_cid=GATE_CID,
    gate_root=GATE_ROOT,
):
    """IExpertRegistry.ModelParams as the tuple the ABI expects."""
    return (mode, expert_count, tolerance, challenge_window, min_node_stake, min_validator_stake, gate_cid, gate_root)


def layer(in_dim, out_dim, multiplier=1 << 20, shift=24, relu=True):
    """IExpertRegistry.Layer as the tuple the ABI expects (exact-mode defaults)."""
    return (in_dim, out_dim, multiplier, shift, relu)


def float_layer(in_dim, out_dim):
    return layer(in_dim, out_dim, multiplier=0, shift=0, relu=False)


EXACT_LAYERS = [layer(8, 16), layer(16, 4, relu=False)]


@pytest.fixture(scope="module")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def node(accounts):
    return accounts[1]


@pytest.fixture(scope="module")
def node2(accounts):
    return accounts[2]


@pytest.fixture(scope="module")
def stranger(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def slasher(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def staking(owner, slasher):
    contract = Staking.deploy(DELAY, {"from": owner})
    contract.setSlashers([slasher], {"from": owner})
    return contract


@pytest.fixture(scope="module")
def registry(staking, owner):
    return ExpertRegistry.deploy(staking, LONGEST_DISPUTE, {"from": owner})


@pytest.fixture
def model_id(registry, owner):
    """An exact model with 4 experts."""
    return registry.registerModel(model_params(), {"from": owner}).return_value


@pytest.fixture
def float_model_id(registry, owner):
    return registry.registerModel(model_params(mode=FLOAT, tolerance=1000), {"from": owner}).return_value


@pytest.fixture
def published(registry, owner, model_id):
    """Expert 0 of `model_id` has version 1."""
    registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})
    return model_id


@pytest.fixture
def staked_node(staking, node):
    staking.deposit({"from": node, "value": MIN_NODE_STAKE})
    return node


@pytest.fixture
def hosted(registry, published, staked_node):
    """`staked_node` hosts expert 0 of `published`."""
    registry.registerHost(published, 0, ENDPOINT, {"from": staked_node})
    return published


# ---------------------------------------------------------------- construction


def test_constructor_records_staking_and_longest_dispute(registry, staking):
    assert registry.staking() == staking
    assert registry.longestDispute() == LONGEST_DISPUTE
    assert registry.modelCount() == 0


def test_limits_match_the_protocol(registry):
    assert registry.MAX_ROW_LENGTH() == 4096
    assert registry.MAX_LAYERS() == 16


def test_constructor_rejects_zero_staking_address(owner):
    with reverts_with("ZeroAddress()"):
        ExpertRegistry.deploy(ZERO_ADDRESS, LONGEST_DISPUTE, {"from": owner})


# ---------------------------------------------------------------- registerModel


def test_register_model_stores_the_model(registry, owner):
    tx = registry.registerModel(model_params(), {"from": owner})
    assert tx.return_value == 1
    assert registry.modelCount() == 1
    assert tuple(registry.model(1)) == (
        owner, EXACT, 4, 0, 24 * 3600, MIN_NODE_STAKE, MIN_VALIDATOR_STAKE, GATE_CID, GATE_ROOT
    )
    assert tx.events["ModelRegistered"] == {
        "modelId": 1,
        "owner": owner,
        "mode": EXACT,
        "expertCount": 4,
        "gateCid": GATE_CID,
        "gateRoot": GATE_ROOT,
    }


def test_model_ids_count_up_from_one(registry, owner, stranger):
    registry.registerModel(model_params(), {"from": owner})
    tx = registry.registerModel(model_params(mode=FLOAT, tolerance=5), {"from": stranger})
    assert tx.return_value == 2
    assert registry.modelCount() == 2
    assert registry.model(2)[0] == stranger


def test_register_model_with_zero_experts_reverts(registry, owner):
    with reverts_with("ZeroExperts()"):
        registry.registerModel(model_params(expert_count=0), {"from": owner})


def test_register_model_with_empty_gate_cid_reverts(registry, owner):
    with reverts_with("EmptyCid()"):
        registry.registerModel(model_params(gate_cid=""), {"from": owner})


def test_register_model_accepts_the_longest_safe_challenge_window(registry, owner):
    tx = registry.registerModel(model_params(challenge_window=MAX_WINDOW), {"from": owner})
    assert registry.model(tx.return_value)[4] == MAX_WINDOW


@pytest.mark.parametrize("window", [0, MAX_WINDOW + 1])
def test_register_model_with_unsafe_challenge_window_reverts(registry, owner, window):
    with reverts_with("InvalidChallengeWindow(uint64,uint64)", window, MAX_WINDOW):
        registry.registerModel(model_params(challenge_window=window), {"from": owner})


def test_no_window_is_safe_when_disputes_outlast_unbonding(staking, owner):
    registry = ExpertRegistry.deploy(staking, DELAY, {"from": owner})
    with reverts_with("InvalidChallengeWindow(uint64,uint64)", 1, 0):
        registry.registerModel(model_params(challenge_window=1), {"from": owner})


@pytest.mark.parametrize("node_stake,validator_stake", [(0, ETH), (ETH, 0)])
def test_register_model_with_zero_minimum_stake_reverts(registry, owner, node_stake, validator_stake):
    with reverts_with("ZeroMinimumStake()"):
        registry.registerModel(
            model_params(min_node_stake=node_stake, min_validator_stake=validator_stake), {"from": owner}
        )


def test_exact_model_with_tolerance_reverts(registry, owner):
    with reverts_with("InvalidTolerance(uint32)", 1):
        registry.registerModel(model_params(mode=EXACT, tolerance=1), {"from": owner})


def test_float_model_without_tolerance_reverts(registry, owner):
    with reverts_with("InvalidTolerance(uint32)", 0):
        registry.registerModel(model_params(mode=FLOAT, tolerance=0), {"from": owner})


def test_float_model_keeps_its_tolerance(registry, float_model_id):
    assert registry.model(float_model_id)[1] == FLOAT
    assert registry.model(float_model_id)[3] == 1000


def test_model_of_unknown_id_reverts(registry):
    with reverts_with("UnknownModel(uint256)", 1):
        registry.model(1)


# ---------------------------------------------------------------- setGate / transferModelOwnership


def test_set_gate_replaces_the_gate(registry, owner, model_id):
    new_root = "0x" + "33" * 32
    tx = registry.setGate(model_id, "QmNewGate", new_root, {"from": owner})
    assert tuple(registry.model(model_id))[7:] == ("QmNewGate", new_root)
    assert tx.events["GateUpdated"] == {"modelId": model_id, "gateCid": "QmNewGate", "gateRoot": new_root}


def test_set_gate_with_empty_cid_reverts(registry, owner, model_id):
    with reverts_with("EmptyCid()"):
        registry.setGate(model_id, "", GATE_ROOT, {"from": owner})


def test_set_gate_by_non_owner_reverts(registry, stranger, model_id):
    with reverts_with("NotModelOwner(uint256,address)", model_id, stranger):
        registry.setGate(model_id, "QmNewGate", GATE_ROOT, {"from": stranger})


def test_set_gate_of_unknown_model_reverts(registry, owner):
    with reverts_with("UnknownModel(uint256)", 7):
        registry.setGate(7, "QmNewGate", GATE_ROOT, {"from": owner})


def test_transfer_model_ownership_hands_over_owner_rights(registry, owner, stranger, model_id):
    tx = registry.transferModelOwnership(model_id, stranger, {"from": owner})
    assert registry.model(model_id)[0] == stranger
    assert tx.events["ModelOwnershipTransferred"] == {
        "modelId": model_id,
        "previousOwner": owner,
        "newOwner": stranger,
    }
    registry.setGate(model_id, "QmNewGate", GATE_ROOT, {"from": stranger})
    with reverts_with("NotModelOwner(uint256,address)", model_id, owner):
        registry.setGate(model_id, "QmOldOwner", GATE_ROOT, {"from": owner})


def test_transfer_model_ownership_to_zero_address_reverts(registry, owner, model_id):
    with reverts_with("ZeroAddress()"):
        registry.transferModelOwnership(model_id, ZERO_ADDRESS, {"from": owner})


def test_transfer_model_ownership_by_non_owner_reverts(registry, stranger, model_id):
    with reverts_with("NotModelOwner(uint256,address)", model_id, stranger):
        registry.transferModelOwnership(model_id, stranger, {"from": stranger})


def test_transfer_ownership_of_unknown_model_reverts(registry, owner, stranger):
    with reverts_with("UnknownModel(uint256)", 1):
        registry.transferModelOwnership(1, stranger, {"from": owner})


# ---------------------------------------------------------------- publishExpert


def test_publish_expert_creates_version_one(registry, owner, model_id):
    tx = registry.publishExpert(model_id, 2, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})
    assert tx.return_value == 1
    assert registry.latestVersion(model_id, 2) == 1
    assert tuple(registry.expertVersion(model_id, 2, 1)) == (WEIGHTS_CID, WEIGHTS_ROOT, tx.timestamp)
    assert [tuple(l) for l in registry.layers(model_id, 2, 1)] == EXACT_LAYERS
    assert tx.events["ExpertPublished"] == {
        "modelId": model_id,
        "expertIndex": 2,
        "version": 1,
        "weightsCid": WEIGHTS_CID,
        "weightsRoot": WEIGHTS_ROOT,
    }


def test_republishing_adds_a_version_and_keeps_the_old_one(registry, owner, published):
    new_layers = [layer(8, 4, multiplier=3, shift=0, relu=False)]
    new_root = "0x" + "44" * 32
    tx = registry.publishExpert(published, 0, "QmV2", new_root, new_layers, {"from": owner})
    assert tx.return_value == 2
    assert registry.latestVersion(published, 0) == 2
    assert tuple(registry.expertVersion(published, 0, 1))[:2] == (WEIGHTS_CID, WEIGHTS_ROOT)
    assert [tuple(l) for l in registry.layers(published, 0, 1)] == EXACT_LAYERS
    assert tuple(registry.expertVersion(published, 0, 2))[:2] == ("QmV2", new_root)
    assert [tuple(l) for l in registry.layers(published, 0, 2)] == new_layers


def test_versions_are_counted_per_expert(registry, owner, published):
    assert registry.latestVersion(published, 1) == 0
    tx = registry.publishExpert(published, 1, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})
    assert tx.return_value == 1


def test_publish_expert_by_non_owner_reverts(registry, stranger, model_id):
    with reverts_with("NotOwnerOrTrainer(uint256,uint32,address)", model_id, 0, stranger):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": stranger})


def test_publish_expert_of_unknown_model_reverts(registry, owner):
    with reverts_with("UnknownModel(uint256)", 1):
        registry.publishExpert(1, 0, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})


def test_publish_expert_beyond_expert_count_reverts(registry, owner, model_id):
    with reverts_with("UnknownExpert(uint256,uint32)", model_id, 4):
        registry.publishExpert(model_id, 4, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})


def test_publish_expert_with_empty_cid_reverts(registry, owner, model_id):
    with reverts_with("EmptyCid()"):
        registry.publishExpert(model_id, 0, "", WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})


def test_exact_expert_without_weights_root_reverts(registry, owner, model_id):
    with reverts_with("ZeroRoot()"):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, ZERO_ROOT, EXACT_LAYERS, {"from": owner})


def test_float_expert_may_go_without_weights_root(registry, owner, float_model_id):
    layers = [float_layer(8, 16), float_layer(16, 4)]
    registry.publishExpert(float_model_id, 0, WEIGHTS_CID, ZERO_ROOT, layers, {"from": owner})
    assert [tuple(l) for l in registry.layers(float_model_id, 0, 1)] == layers


@pytest.mark.parametrize("count", [0, 17])
def test_publish_expert_with_invalid_layer_count_reverts(registry, owner, model_id, count):
    with reverts_with("InvalidLayerCount(uint256)", count):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, [layer(8, 8)] * count, {"from": owner})


def test_publish_expert_accepts_the_maximum_shape(registry, owner, model_id):
    layers = [layer(4096, 4096)] * 16
    registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, layers, {"from": owner})
    assert len(registry.layers(model_id, 0, 1)) == 16


@pytest.mark.parametrize("bad", [layer(0, 4), layer(8, 0)])
def test_layer_with_a_zero_dimension_reverts(registry, owner, model_id, bad):
    # The bad layer comes second so the error's index is checked too; its inDim chains unless it is zero.
    with reverts_with("InvalidLayer(uint256)", 1):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, [layer(4, 8), bad], {"from": owner})


def test_row_longer_than_the_limit_reverts(registry, owner, model_id):
    layers = [layer(8, 4097), layer(4097, 4)]
    with reverts_with("RowTooLong(uint256,uint32,uint32)", 1, 4097, 4096):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, layers, {"from": owner})


def test_layers_that_do_not_chain_revert(registry, owner, model_id):
    layers = [layer(8, 16), layer(16, 4), layer(5, 2)]
    with reverts_with("LayerShapeMismatch(uint256,uint32,uint32)", 2, 4, 5):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, layers, {"from": owner})


@pytest.mark.parametrize(
    "multiplier,shift",
    [(0, 10), (-1, 10), (2**31, 10), (1, 63)],
    ids=["zero-multiplier", "negative-multiplier", "multiplier-2^31", "shift-63"],
)
def test_exact_layer_outside_requantisation_limits_reverts(registry, owner, model_id, multiplier, shift):
    layers = [layer(8, 8), layer(8, 8, multiplier=multiplier, shift=shift)]
    with reverts_with("InvalidLayer(uint256)", 1):
        registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, layers, {"from": owner})


def test_exact_layer_at_requantisation_limits_is_accepted(registry, owner, model_id):
    layers = [layer(8, 8, multiplier=1, shift=0), layer(8, 8, multiplier=2**31 - 1, shift=62)]
    registry.publishExpert(model_id, 0, WEIGHTS_CID, WEIGHTS_ROOT, layers, {"from": owner})
    assert [tuple(l) for l in registry.layers(model_id, 0, 1)] == layers


@pytest.mark.parametrize(
    "bad",
    [layer(8, 8, multiplier=1, shift=0, relu=False), layer(8, 8, multiplier=0, shift=1, relu=False),
     layer(8, 8, multiplier=0, shift=0, relu=True)],
    ids=["multiplier", "shift", "relu"],
)
def test_float_layer_with_requantisation_parameters_reverts(registry, owner, float_model_id, bad):
    with reverts_with("InvalidLayer(uint256)", 1):
        registry.publishExpert(float_model_id, 0, WEIGHTS_CID, ZERO_ROOT, [float_layer(4, 8), bad], {"from": owner})


# ---------------------------------------------------------------- version views


def test_latest_version_of_unknown_expert_reverts(registry, model_id):
    with reverts_with("UnknownExpert(uint256,uint32)", model_id, 4):
        registry.latestVersion(model_id, 4)


def test_latest_version_of_unknown_model_reverts(registry):
    with reverts_with("UnknownModel(uint256)", 3):
        registry.latestVersion(3, 0)


@pytest.mark.parametrize("version", [0, 2])
def test_reading_an_unpublished_version_reverts(registry, published, version):
    with reverts_with("UnknownVersion(uint256,uint32,uint32)", published, 0, version):
        registry.expertVersion(published, 0, version)
    with reverts_with("UnknownVersion(uint256,uint32,uint32)", published, 0, version):
        registry.layers(published, 0, version)


# ---------------------------------------------------------------- registerHost / unregisterHost


def test_register_host_lists_the_node(registry, published, staked_node):
    tx = registry.registerHost(published, 0, ENDPOINT, {"from": staked_node})
    assert registry.hosts(published, 0) == [staked_node]
    assert registry.endpointOf(published, 0, staked_node) == ENDPOINT
    assert registry.isHost(published, 0, staked_node)
    assert registry.isActiveHost(published, 0, staked_node)
    assert tx.events["HostRegistered"] == {
        "modelId": published,
        "expertIndex": 0,
        "node": staked_node,
        "endpoint": ENDPOINT,
    }


def test_hosting_is_per_expert(registry, hosted, staked_node):
    assert not registry.isHost(hosted, 1, staked_node)
    assert registry.hosts(hosted, 1) == []


def test_register_host_for_unknown_model_reverts(registry, staked_node):
    with reverts_with("UnknownModel(uint256)", 1):
        registry.registerHost(1, 0, ENDPOINT, {"from": staked_node})


def test_register_host_for_unknown_expert_reverts(registry, published, staked_node):
    with reverts_with("UnknownExpert(uint256,uint32)", published, 4):
        registry.registerHost(published, 4, ENDPOINT, {"from": staked_node})


def test_register_host_for_unpublished_expert_reverts(registry, published, staked_node):
    with reverts_with("UnknownVersion(uint256,uint32,uint32)", published, 1, 0):
        registry.registerHost(published, 1, ENDPOINT, {"from": staked_node})


def test_register_host_with_empty_endpoint_reverts(registry, published, staked_node):
    with reverts_with("EmptyEndpoint()"):
        registry.registerHost(published, 0, "", {"from": staked_node})


def test_register_host_below_minimum_stake_reverts(registry, staking, published, node):
    staking.deposit({"from": node, "value": MIN_NODE_STAKE - 1})
    with reverts_with("InsufficientStake(address,uint256,uint256)", node, MIN_NODE_STAKE - 1, MIN_NODE_STAKE):
        registry.registerHost(published, 0, ENDPOINT, {"from": node})


def test_register_host_twice_reverts(registry, hosted, staked_node):
    with reverts_with("AlreadyHost(uint256,uint32,address)", hosted, 0, staked_node):
        registry.registerHost(hosted, 0, "http://other", {"from": staked_node})


def test_unregister_host_removes_the_node(registry, hosted, staked_node):
    tx = registry.unregisterHost(hosted, 0, {"from": staked_node})
    assert registry.hosts(hosted, 0) == []
    assert not registry.isHost(hosted, 0, staked_node)
    assert not registry.isActiveHost(hosted, 0, staked_node)
    assert registry.endpointOf(hosted, 0, staked_node) == ""
    assert tx.events["HostUnregistered"] == {"modelId": hosted, "expertIndex": 0, "node": staked_node}


def test_unregister_host_moves_the_last_host_into_the_gap(registry, staking, published, accounts):
    nodes = accounts[4:7]
    for n in nodes:
        staking.deposit({"from": n, "value": MIN_NODE_STAKE})
        registry.registerHost(published, 0, ENDPOINT, {"from": n})
    registry.unregisterHost(published, 0, {"from": nodes[0]})
    assert registry.hosts(published, 0) == [nodes[2], nodes[1]]
    # The moved host can still leave: its position was updated.
    registry.unregisterHost(published, 0, {"from": nodes[2]})
    assert registry.hosts(published, 0) == [nodes[1]]


def test_host_can_register_again_after_leaving(registry, hosted, staked_node):
    registry.unregisterHost(hosted, 0, {"from": staked_node})
    registry.registerHost(hosted, 0, "http://new", {"from": staked_node})
    assert registry.endpointOf(hosted, 0, staked_node) == "http://new"


def test_unregister_by_non_host_reverts(registry, hosted, node2):
    with reverts_with("NotHost(uint256,uint32,address)", hosted, 0, node2):
        registry.unregisterHost(hosted, 0, {"from": node2})


def test_hosts_of_unknown_expert_reverts(registry, model_id):
    with reverts_with("UnknownExpert(uint256,uint32)", model_id, 9):
        registry.hosts(model_id, 9)


# ---------------------------------------------------------------- isActiveHost


def test_host_that_unbonds_below_minimum_is_inactive(registry, staking, hosted, staked_node):
    staking.requestUnbond(1, {"from": staked_node})
    assert registry.isHost(hosted, 0, staked_node)
    assert not registry.isActiveHost(hosted, 0, staked_node)


def test_slashed_host_is_inactive_until_it_restakes(registry, staking, hosted, staked_node, slasher):
    staking.slash(staked_node, ETH, {"from": slasher})
    assert not registry.isActiveHost(hosted, 0, staked_node)
    staking.deposit({"from": staked_node, "value": ETH})
    assert registry.isActiveHost(hosted, 0, staked_node)


def test_staked_non_host_is_not_active(registry, staking, published, node2):
    staking.deposit({"from": node2, "value": MIN_NODE_STAKE})
    assert not registry.isActiveHost(published, 0, node2)


def test_is_active_host_of_unknown_model_is_false(registry, staked_node):
    assert not registry.isActiveHost(99, 0, staked_node)


def test_is_active_host_is_cheap(registry, hosted, staked_node):
    # Called on every window commitment, so it may read one storage slot here and one in Staking. Alone in a
    # transaction that is 21k base + ~1k calldata + 2.1k cold slot + 2.6k cold Staking account + 2.1k cold
    # slot there, about 30k; one more cold storage read would push it past 32k.
    assert registry.isActiveHost.estimate_gas(hosted, 0, staked_node) < 32_000


# ---------------------------------------------------------------- commitEligibility


def test_active_host_may_commit_the_published_version(registry, hosted, staked_node):
    assert registry.commitEligibility(hosted, 0, 1, staked_node) == ELIGIBLE


def test_active_host_may_commit_an_older_version(registry, owner, hosted, staked_node):
    registry.publishExpert(hosted, 0, WEIGHTS_CID, WEIGHTS_ROOT, EXACT_LAYERS, {"from": owner})
    assert registry.commitEligibility(hosted, 0, 1, staked_node) == ELIGIBLE
    assert registry.commitEligibility(hosted, 0, 2, staked_node) == ELIGIBLE


@pytest.mark.parametrize("version", [0, 2])
def test_commit_of_an_unpublished_version_is_unknown_version(registry, hosted, staked_node, version):
    assert registry.commitEligibility(hosted, 0, version, staked_node) == UNKNOWN_VERSION


def test_commit_by_a_staked_non_host_is_not_active_host(registry, staking, published, node2):
    staking.deposit({"from": node2, "value": MIN_NODE_STAKE})
    assert registry.commitEligibility(published, 0, 1, node2) == NOT_ACTIVE_HOST


def test_commit_by_a_host_below_minimum_stake_is_not_active_host(registry, staking, hosted, staked_node):
    staking.requestUnbond(1, {"from": staked_node})
    assert registry.commitEligibility(hosted, 0, 1, staked_node) == NOT_ACTIVE_HOST


def test_commit_eligibility_checks_hosting_before_the_version(registry, published, node2):
    assert registry.commitEligibility(published, 0, 2, node2) == NOT_ACTIVE_HOST


def test_commit_eligibility_of_unknown_model_or_expert_is_not_active_host(registry, hosted, staked_node):
    assert registry.commitEligibility(99, 0, 1, staked_node) == NOT_ACTIVE_HOST
    assert registry.commitEligibility(hosted, 4, 1, staked_node) == NOT_ACTIVE_HOST


def test_commit_eligibility_is_cheap(registry, hosted, staked_node):
    # Called on every window commitment, so it may read two storage slots here (the host record and the latest
    # version) and one in Staking: alone in a transaction, about 21k base + ~1k calldata + 2 x 2.1k cold slots
    # + 2.6k cold Staking account + 2.1k cold slot there, about 32k; reading the model too would pass 34k.
    assert registry.commitEligibility.estimate_gas(hosted, 0, 1, staked_node) < 34_000
