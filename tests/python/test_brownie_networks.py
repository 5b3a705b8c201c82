"""tools/brownie_networks.py: B-MoE's networks in brownie's network-config.yaml (a copy here, never the real one)."""
import pytest
import yaml

from tools.brownie_networks import GROUP, NETWORKS, remove_network, upsert_live_network

BROWNIE_DEFAULTS = {
    "live": [
        {
            "name": "Ethereum",
            "networks": [
                {"name": "Sepolia (Infura)", "id": "sepolia", "chainid": 11155111, "host": "https://sepolia.infura.io/v3/$WEB3_INFURA_PROJECT_ID"}
            ],
        }
    ],
    "development": [{"name": "Anvil", "id": "development", "cmd": "anvil", "host": "http://127.0.0.1"}],
}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "network-config.yaml"
    path.write_text(yaml.safe_dump(BROWNIE_DEFAULTS))
    return path


def groups(path):
    return {g["name"]: g["networks"] for g in yaml.safe_load(path.read_text())["live"]}


def test_networks_are_added_to_their_own_group(config):
    for network in NETWORKS:
        assert upsert_live_network(network, config) == "added"
    ours = groups(config)[GROUP]
    assert [n["id"] for n in ours] == ["bmoe-local", "bmoe-sepolia", "bmoe-holesky", "bmoe-hoodi"]
    assert ours[0]["host"] == "http://127.0.0.1:8545" and ours[0]["chainid"] == 31337
    assert ours[1]["host"] == "${SEPOLIA_RPC_URL}"


def test_running_twice_changes_nothing(config):
    for network in NETWORKS:
        upsert_live_network(network, config)
    before = config.read_text()
    assert {upsert_live_network(network, config) for network in NETWORKS} == {"unchanged"}
    assert config.read_text() == before


def test_changed_network_is_updated_in_place(config):
    upsert_live_network({"name": "x", "id": "bmoe-local", "chainid": 31337, "host": "http://127.0.0.1:9999"}, config)
    assert upsert_live_network(NETWORKS[0], config) == "updated"
    assert groups(config)[GROUP] == [NETWORKS[0]]


def test_brownies_own_networks_are_left_alone(config):
    for network in NETWORKS:
        upsert_live_network(network, config)
    assert groups(config)["Ethereum"] == BROWNIE_DEFAULTS["live"][0]["networks"]
    assert yaml.safe_load(config.read_text())["development"] == BROWNIE_DEFAULTS["development"]


def test_an_id_declared_elsewhere_is_not_shadowed(config):
    with pytest.raises(ValueError, match="'sepolia' is already declared in group 'Ethereum'"):
        upsert_live_network({"name": "s", "id": "sepolia", "chainid": 11155111, "host": "${X}"}, config)


def test_remove_drops_the_network_and_an_empty_group(config):
    upsert_live_network(NETWORKS[0], config)
    assert remove_network("bmoe-local", config)
    assert GROUP not in groups(config)
    assert not remove_network("bmoe-local", config)
