"""Publishing a model (IPFS + ExpertRegistry) and loading it back, trusting only the chain.

Real parts throughout: brownie's anvil with the deployed suite, a `bmoe ipfs daemon` process, the web3 client.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bmoe_py.chain.client import connect
from bmoe_py.chain.manifest import ManifestNotFound
from bmoe_py.publisher.prepare import model_files
from bmoe_py.publisher.fetch import WeightsMismatch, load_expert_from_chain, load_gate_from_chain
from bmoe_py.publisher.publish import (
    InsufficientFunds,
    ModelFiles,
    PublishError,
    PublishParams,
    publish_expert_gas_bound,
    publish_model,
)
from bmoe_py.publisher.records import LayerSpec, Mode, read_model
from bmoe_py.storage.client import IpfsClient
from tiny_model import small_model

pytestmark = pytest.mark.timeout(120)
DAY = 24 * 3600
ETHER = 10**18


@pytest.fixture(scope="module")
def files() -> ModelFiles:
    return small_model()


@pytest.fixture
def chain(network):
    return network.chain()



def register_by_hand(chain, gate_cid: str, gate_root: bytes, experts: list[tuple[str, bytes, tuple[LayerSpec, ...]]]) -> int:
    """Registers a model with whatever CIDs and roots a test wants, as a careless or malicious owner could."""
    receipt = chain.send(
        chain.registry.functions.registerModel((0, len(experts), 0, DAY, ETHER, ETHER, gate_cid, gate_root))
    )
    model_id = chain.events(receipt, "ExpertRegistry", "ModelRegistered")[0]["modelId"]
    for index, (cid, root, layers) in enumerate(experts):
        chain.send(chain.registry.functions.publishExpert(model_id, index, cid, root, [l.as_tuple() for l in layers]))
    return model_id


# ------------------------------------------------------------------------------------------- publishing


def test_publish_registers_the_model_with_its_gate_and_parameters(chain, ipfs, files):
    params = PublishParams(challenge_window=2 * DAY, min_node_stake=3 * ETHER, min_validator_stake=ETHER)
    published = publish_model(chain, ipfs, files, params)
    model = read_model(chain, published.model_id)
    assert (model.owner, model.mode, model.expert_count, model.tolerance) == (chain.address, Mode.EXACT_INT8, 3, 0)
    assert (model.challenge_window, model.min_node_stake, model.min_validator_stake) == (2 * DAY, 3 * ETHER, ETHER)
    assert (model.gate_cid, model.gate_root) == (published.gate_cid, files.gate.root)


def test_publish_registers_every_expert_with_its_cid_root_and_layers(chain, ipfs, files):
    published = publish_model(chain, ipfs, files)
    model = read_model(chain, published.model_id)
    for expert, record, sent in zip(files.experts, model.experts, published.experts):
        assert (record.version, record.weights_cid, record.weights_root) == (1, sent.weights_cid, expert.root)
        assert record.layers == expert.layers
        assert sent.tx_hash is not None


def test_publish_pins_every_file_under_the_cid_of_its_bytes(chain, ipfs, files):
    from bmoe_py.storage.cid import cid_of_bytes

    published = publish_model(chain, ipfs, files)
    pins = ipfs.pin_ls()
    assert published.gate_cid == cid_of_bytes(files.gate.data) and published.gate_cid in pins
    for expert, sent in zip(files.experts, published.experts):
        assert sent.weights_cid == cid_of_bytes(expert.data) and sent.weights_cid in pins


def test_the_funds_check_bounds_the_gas_of_every_expert_publication(chain, ipfs, files):
    published = publish_model(chain, ipfs, files)
    assert all(0 < e.gas_used <= publish_expert_gas_bound(len(e.layers)) for e in published.experts)


def test_files_are_canonical_so_the_same_model_gets_the_same_cids():
    assert small_model(seed=1) == small_model(seed=1)
    assert small_model(seed=1).experts[0].data != small_model(seed=2).experts[0].data


def test_publish_without_enough_funds_registers_nothing(network, ipfs, files):
    from eth_account import Account

    poor = network.chain("0x" + bytes(Account.create().key).hex())
    before = poor.call(poor.registry.functions.modelCount())
    with pytest.raises(InsufficientFunds, match="nothing was published: .* has 0.000000 ETH"):
        publish_model(poor, ipfs, files)
    assert poor.call(poor.registry.functions.modelCount()) == before


def test_publish_with_an_unreachable_ipfs_node_registers_nothing(chain, files):
    before = chain.call(chain.registry.functions.modelCount())
    with IpfsClient("http://127.0.0.1:9", timeout=2, retries=0) as nowhere:
        with pytest.raises(PublishError, match="nothing was published: .*cannot reach the IPFS node"):
            publish_model(chain, nowhere, files)
    assert chain.call(chain.registry.functions.modelCount()) == before


def test_publish_with_a_challenge_window_the_registry_refuses_spends_nothing(chain, ipfs, files):
    balance = chain.w3.eth.get_balance(chain.address)
    with pytest.raises(PublishError, match="registerModel would revert: ExpertRegistry.InvalidChallengeWindow"):
        publish_model(chain, ipfs, files, PublishParams(challenge_window=30 * DAY))
    assert chain.w3.eth.get_balance(chain.address) == balance


def test_publish_of_an_expert_whose_layers_do_not_chain_registers_nothing(chain, ipfs, files):
    bad = files.experts[1]
    broken = type(bad)(bad.index, bad.data, bad.root, (bad.layers[0], LayerSpec(99, 8, 1, 0, False)))
    before = chain.call(chain.registry.functions.modelCount())
    with pytest.raises(PublishError, match="expert 1 layer 1 takes 99 inputs, layer 0 gives 16"):
        publish_model(chain, ipfs, ModelFiles(files.gate, (files.experts[0], broken, files.experts[2])))
    assert chain.call(chain.registry.functions.modelCount()) == before


def test_resume_publishes_only_the_experts_still_missing(chain, ipfs, files):
    first = files.experts[0]
    gate_cid = ipfs.add_bytes(files.gate.data)
    receipt = chain.send(
        chain.registry.functions.registerModel((0, 3, 0, DAY, ETHER, ETHER // 2, gate_cid, files.gate.root))
    )
    model_id = chain.events(receipt, "ExpertRegistry", "ModelRegistered")[0]["modelId"]
    chain.send(
        chain.registry.functions.publishExpert(
            model_id, 0, ipfs.add_bytes(first.data), first.root, [l.as_tuple() for l in first.layers]
        )
    )
    published = publish_model(chain, ipfs, files, resume=model_id)
    assert published.register_tx is None
    assert [(e.index, e.version, e.tx_hash is None) for e in published.experts] == [(0, 1, True), (1, 1, False), (2, 1, False)]
    assert all(e.latest_version == 1 for e in read_model(chain, model_id).experts)


# ------------------------------------------------------------------------------------------- loading back


def test_a_published_expert_loads_back_identical(chain, ipfs, files):
    published = publish_model(chain, ipfs, files)
    loaded = load_expert_from_chain(chain, ipfs, published.model_id, 2)
    assert loaded.data == files.experts[2].data
    assert tuple(LayerSpec.of(layer) for layer in loaded.layers) == files.experts[2].layers
    assert loaded.record.version == 1


def test_a_published_gate_loads_back_identical(chain, ipfs, files):
    published = publish_model(chain, ipfs, files)
    gate = load_gate_from_chain(chain, ipfs, published.model_id)
    assert gate.data == files.gate.data and gate.gate.model.config.num_experts == 3


def test_an_expert_registered_with_the_cid_of_other_weights_is_refused(chain, ipfs, files):
    e0, e1 = files.experts[:2]
    gate_cid, cid0 = ipfs.add_bytes(files.gate.data), ipfs.add_bytes(e0.data)
    # expert 1 points at expert 0's file but keeps its own root: the bytes have their CID, the root is wrong
    model_id = register_by_hand(chain, gate_cid, files.gate.root, [(cid0, e0.root, e0.layers), (cid0, e1.root, e1.layers)])
    load_expert_from_chain(chain, ipfs, model_id, 0)
    with pytest.raises(WeightsMismatch) as refused:
        load_expert_from_chain(chain, ipfs, model_id, 1)
    assert (refused.value.model_id, refused.value.what, refused.value.cid) == (model_id, "expert 1 version 1", cid0)
    assert f"the chain records 0x{e1.root.hex()}" in str(refused.value)


def test_an_expert_whose_registered_root_differs_is_refused(chain, ipfs, files):
    e0 = files.experts[0]
    other_root = bytes([e0.root[0] ^ 1]) + e0.root[1:]
    model_id = register_by_hand(
        chain, ipfs.add_bytes(files.gate.data), files.gate.root, [(ipfs.add_bytes(e0.data), other_root, e0.layers)]
    )
    with pytest.raises(WeightsMismatch, match=f"the weights root of the file is 0x{e0.root.hex()}, the chain records"):
        load_expert_from_chain(chain, ipfs, model_id, 0)


def test_an_expert_whose_registered_requantisation_differs_is_refused(chain, ipfs, files):
    e0 = files.experts[0]
    first = e0.layers[0]
    layers = (LayerSpec(first.in_dim, first.out_dim, first.multiplier + 1, first.shift, first.relu), *e0.layers[1:])
    model_id = register_by_hand(chain, ipfs.add_bytes(files.gate.data), files.gate.root, [(ipfs.add_bytes(e0.data), e0.root, layers)])
    with pytest.raises(WeightsMismatch, match="layer 0 is .* in the file but .* on chain"):
        load_expert_from_chain(chain, ipfs, model_id, 0)


def test_a_gate_whose_registered_root_differs_is_refused(chain, ipfs, files):
    e0 = files.experts[0]
    model_id = register_by_hand(chain, ipfs.add_bytes(files.gate.data), e0.root, [(ipfs.add_bytes(e0.data), e0.root, e0.layers)])
    with pytest.raises(WeightsMismatch, match=f"model {model_id} gate .*the gate root of the file is 0x{files.gate.root.hex()}"):
        load_gate_from_chain(chain, ipfs, model_id)


def test_bytes_that_do_not_have_the_registered_cid_are_refused(chain, ipfs, files, tampering_proxy):
    published = publish_model(chain, ipfs, files)
    with IpfsClient(tampering_proxy.url, timeout=20) as lying_node:
        with pytest.raises(WeightsMismatch, match="bytes received from .* have CID .*, not the registered one"):
            load_expert_from_chain(chain, lying_node, published.model_id, 0)


def test_connecting_without_a_manifest_for_the_chain_names_the_fix(network, tmp_path):
    with pytest.raises(ManifestNotFound, match="no deployment for chain .*: run `make deploy`"):
        connect(network.rpc_url, network.publisher_key, deployments_dir=tmp_path)


# ------------------------------------------------------------------------------------------- the CLI


def bmoe(network, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bmoe_py", *args], capture_output=True, text=True, env=network.env(**env), timeout=120
    )


def test_show_prints_the_model_its_experts_and_their_cids(network, chain, ipfs, files):
    published = publish_model(chain, ipfs, files)
    shown = bmoe(network, "model", "show", str(published.model_id))
    assert shown.returncode == 0, shown.stderr
    assert f"model {published.model_id} on chain {chain.chain_id}, owner {chain.address}" in shown.stdout
    assert "  ExactInt8, 3 experts, challenge window 1d, min node stake 1 ETH, min validator stake 0.5 ETH" in shown.stdout
    assert f"gate  {published.gate_cid}  root 0x{files.gate.root.hex()}" in shown.stdout
    for expert in published.experts:
        assert f"{expert.weights_cid}  0x{expert.weights_root.hex()}  8->16" in shown.stdout


def test_show_lists_the_hosts_of_each_expert(network, chain, ipfs, files, accounts, ExpertRegistry, Staking):
    # The containers come as brownie fixtures: `from brownie import ExpertRegistry` fails once a test has used
    # brownie.project.scripts.run, which removes the project's containers from the brownie namespace on return.
    published = publish_model(chain, ipfs, files)
    node = accounts[3]
    Staking.at(network.manifest.address("Staking")).deposit({"from": node, "value": ETHER})
    ExpertRegistry.at(network.manifest.address("ExpertRegistry")).registerHost(
        published.model_id, 1, "http://10.0.0.7:9000", {"from": node}
    )
    shown = bmoe(network, "model", "show", str(published.model_id), "--json")
    hosts = [e["hosts"] for e in json.loads(shown.stdout)["experts"]]
    assert hosts == [[], [{"address": node.address, "endpoint": "http://10.0.0.7:9000", "active": True}], []]


def test_show_verify_downloads_and_accepts_every_file_of_an_honest_model(network, chain, ipfs, files):
    published = publish_model(chain, ipfs, files)
    shown = bmoe(network, "model", "show", str(published.model_id), "--verify", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["gate"]["check"] == "ok"
    assert [(e["cid"], e["check"]) for e in report["experts"]] == [(e.weights_cid, "ok") for e in published.experts]


def test_show_verify_refuses_an_expert_whose_chain_root_differs_and_exits_1(network, chain, ipfs, files):
    e0 = files.experts[0]
    wrong_root = bytes(31) + b"\x01"
    model_id = register_by_hand(chain, ipfs.add_bytes(files.gate.data), files.gate.root, [(ipfs.add_bytes(e0.data), wrong_root, e0.layers)])
    shown = bmoe(network, "model", "show", str(model_id), "--verify")
    assert shown.returncode == 1
    assert f"REFUSED: the weights root of the file is 0x{e0.root.hex()}, the chain records 0x{wrong_root.hex()}" in shown.stdout


def test_show_of_an_unknown_model_says_so(network):
    shown = bmoe(network, "model", "show", "999")
    assert shown.returncode == 1
    assert shown.stderr.strip() == f"bmoe model show: error: chain {network.manifest.chain_id} has no model 999"


def test_commands_without_a_manifest_for_the_chain_say_how_to_deploy(network, tmp_path):
    for command in (["model", "show", "1"], ["model", "publish", "--epochs", "1"]):
        result = bmoe(network, *command, BMOE_DEPLOYMENTS_DIR=str(tmp_path))
        assert result.returncode == 1
        assert f"no deployment for chain {network.manifest.chain_id} (no {tmp_path}/{network.manifest.chain_id}.json): run `make deploy`" in result.stderr


def test_publish_with_a_malformed_key_refuses_without_echoing_it(network):
    result = bmoe(network, "model", "publish", BMOE_PRIVATE_KEY="0x1234secret")
    assert result.returncode == 1
    assert "BMOE_PRIVATE_KEY does not hold a private key" in result.stderr and "1234secret" not in result.stderr


def test_publish_without_a_key_says_where_to_put_one(network):
    result = bmoe(network, "model", "publish", "--key-env", "NO_SUCH_VARIABLE")
    assert result.returncode == 1
    assert "no private key: set NO_SUCH_VARIABLE" in result.stderr


TINY = ("--dataset", "digits", "--epochs", "1", "--experts", "3", "--k", "1", "--d-model", "16", "--d-hidden", "32")


def test_publish_trains_quantises_and_registers_a_model_that_show_verify_accepts(network, chain, ipfs, tmp_path):
    checkpoint = tmp_path / "published.safetensors"
    published = bmoe(
        network, "model", "publish", *TINY, "--challenge-window", "12h", "--save-checkpoint", str(checkpoint), "--json"
    )
    assert published.returncode == 0, published.stderr
    report = json.loads(published.stdout)
    assert 0 <= report["exact_accuracy"] <= 1 and len(report["experts"]) == 3

    shown = bmoe(network, "model", "show", str(report["model_id"]), "--verify", "--json")
    assert shown.returncode == 0, shown.stderr
    model = json.loads(shown.stdout)
    assert (model["owner"], model["mode"], model["challenge_window"]) == (chain.address, "ExactInt8", 12 * 3600)
    assert model["gate"] == {**report["gate"], "check": "ok"}
    assert [(e["cid"], e["root"], e["layers"], e["check"]) for e in model["experts"]] == [
        (e["cid"], e["root"], e["layers"], "ok") for e in report["experts"]
    ]
    assert all(e["layers"][0].startswith("16->32 ") and e["layers"][1].startswith("32->16 ") for e in model["experts"])

    loaded = load_expert_from_chain(chain, ipfs, report["model_id"], 1)
    assert loaded.record.weights_cid == report["experts"][1]["cid"]
    assert checkpoint.stat().st_size > 0


def test_a_trained_checkpoint_publishes_as_the_files_it_quantises_to(network, tmp_path):
    from bmoe_py.publisher.prepare import TrainingOptions, prepare
    from bmoe_py.storage.cid import cid_of_bytes

    checkpoint = tmp_path / "model.safetensors"
    trained = bmoe(network, "model", "train", *TINY, "--out", str(checkpoint))
    assert trained.returncode == 0, trained.stderr
    published = bmoe(network, "model", "publish", "--checkpoint", str(checkpoint), "--dataset", "digits")
    assert published.returncode == 0, published.stderr
    assert f"model 1 on chain {network.manifest.chain_id} registered (tx 0x" in published.stdout

    # the same checkpoint and calibration data quantise to the same bytes here, so the table lists their CIDs
    prepared = prepare(TrainingOptions(dataset="digits"), checkpoint)
    files = model_files(prepared.model, prepared.exact.experts)
    assert f"gate  {cid_of_bytes(files.gate.data)}  root 0x{files.gate.root.hex()}" in published.stdout
    for expert in files.experts:
        assert f"{cid_of_bytes(expert.data)}  0x{expert.root.hex()}" in published.stdout


def test_publish_with_a_keystore_and_the_wrong_password_refuses(network, tmp_path):
    from eth_account import Account

    keystore = tmp_path / "publisher.json"
    keystore.write_text(json.dumps(Account.encrypt(network.publisher_key, "right password", iterations=2)))
    result = bmoe(network, "model", "publish", "--keystore", str(keystore), BMOE_KEYSTORE_PASSWORD="wrong password")
    assert result.returncode == 1
    assert f"cannot decrypt keystore {keystore}" in result.stderr and "(wrong password?)" in result.stderr
