"""Publishing a model (IPFS + ExpertRegistry) and loading it back, trusting only the chain.

Real parts throughout: brownie's anvil with the deployed suite, a `bmoe ipfs daemon` process, the web3 client.
"""
from __future__ import annotations

import numpy as np
import pytest

from bmoe_py.chain.client import connect
from bmoe_py.chain.manifest import ManifestNotFound
from bmoe_py.model.int8_ref import IntLayer
from bmoe_py.publisher.artifacts import GateBundle, expert_file, gate_file
from bmoe_py.publisher.fetch import WeightsMismatch, load_expert_from_chain, load_gate_from_chain
from bmoe_py.publisher.publish import InsufficientFunds, ModelFiles, PublishError, PublishParams, publish_model
from bmoe_py.publisher.records import LayerSpec, Mode, read_model
from bmoe_py.storage.client import IpfsClient

pytestmark = pytest.mark.timeout(120)
DAY = 24 * 3600
ETHER = 10**18


def random_expert(rng: np.random.Generator, dims=(8, 16, 8)) -> list[IntLayer]:
    layers = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        weight = rng.integers(-128, 128, size=(d_out, d_in), dtype=np.int8)
        bias = rng.integers(-1000, 1000, size=d_out, dtype=np.int32)
        layers.append(IntLayer(weight, bias, int(rng.integers(1, 2**20)), 24, i < len(dims) - 2))
    return layers


def small_model(seed: int = 0, experts: int = 3) -> ModelFiles:
    rng = np.random.default_rng(seed)
    gate = GateBundle(
        {"gate.proj.weight": rng.standard_normal((experts, 8)), "norm.weight": rng.standard_normal(8)},
        {"expert_count": experts, "seed": seed},
    )
    return ModelFiles(gate_file(gate), tuple(expert_file(i, random_expert(rng)) for i in range(experts)))


@pytest.fixture(scope="module")
def files() -> ModelFiles:
    return small_model()


@pytest.fixture
def chain(network):
    return network.chain()


@pytest.fixture
def ipfs(network):
    with IpfsClient(network.ipfs.api, timeout=20) as client:
        yield client


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
    assert gate.data == files.gate.data and gate.bundle.root == files.gate.root


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
