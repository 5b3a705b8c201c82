"""bmoe_py.chain.manifest: the JSON file that tells clients where a deployment lives, and how it guards itself."""
import json

import pytest

from bmoe_py.chain.manifest import (
    CONTRACT_NAMES,
    ContractRecord,
    Manifest,
    ManifestError,
    ManifestNotFound,
    abi_hash,
    load_manifest,
    save_manifest,
)

ABI = [{"type": "function", "name": "bond", "inputs": [], "outputs": [{"name": "", "type": "uint256"}]}]


def make_manifest(chain_id: int = 31337) -> Manifest:
    contracts = {
        name: ContractRecord.create(f"0x{i + 1:040x}", ABI, "0x" + "ab" * 32, 1) for i, name in enumerate(CONTRACT_NAMES)
    }
    return Manifest(
        chain_id=chain_id,
        network="bmoe-local",
        deployer="0x" + "11" * 20,
        deploy_block=1,
        deploy_block_hash="0x" + "22" * 32,
        timestamp="2025-01-01T00:00:00Z",
        git_commit="0" * 40,
        git_dirty=False,
        confirmations=1,
        parameters={"fraud_bond": 10**17},
        compiler={"version": "0.8.28"},
        contracts=contracts,
    )


def test_abi_hash_is_keccak_of_canonical_json():
    # key order and whitespace do not change the hash; content does
    reordered = [{"outputs": ABI[0]["outputs"], "inputs": [], "name": "bond", "type": "function"}]
    assert abi_hash(reordered) == abi_hash(ABI)
    assert abi_hash(ABI[:0]) != abi_hash(ABI)
    assert abi_hash([]) == "0x518674ab2b227e5f11e9084f615d57663cde47bce1ba168b4c19c7ee22a73d70"  # keccak256("[]")


def test_saved_manifest_loads_back_equal(tmp_path):
    manifest = make_manifest()
    path = save_manifest(manifest, tmp_path)
    assert path == tmp_path / "31337.json"
    assert load_manifest(31337, tmp_path) == manifest


def test_save_leaves_no_temporary_files(tmp_path):
    save_manifest(make_manifest(), tmp_path)
    save_manifest(make_manifest(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["31337.json"]


def test_missing_local_manifest_says_make_deploy(tmp_path):
    with pytest.raises(ManifestNotFound, match=r"no deployment for chain 31337 .*: run `make deploy`"):
        load_manifest(31337, tmp_path)


def test_missing_testnet_manifest_says_brownie_run_deploy(tmp_path):
    with pytest.raises(ManifestNotFound, match=r"chain 11155111 .*`brownie run deploy --network <network>`"):
        load_manifest(11155111, tmp_path)


def test_deployments_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BMOE_DEPLOYMENTS_DIR", str(tmp_path))
    save_manifest(make_manifest())
    assert (tmp_path / "31337.json").exists()
    assert load_manifest(31337).chain_id == 31337


def test_tampered_abi_is_rejected(tmp_path):
    path = save_manifest(make_manifest(), tmp_path)
    data = json.loads(path.read_text())
    data["contracts"]["FraudProof"]["abi"][0]["name"] = "bondd"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="ABI of FraudProof does not match its abi_hash"):
        load_manifest(31337, tmp_path)


def test_manifest_lacking_a_contract_is_rejected(tmp_path):
    path = save_manifest(make_manifest(), tmp_path)
    data = json.loads(path.read_text())
    del data["contracts"]["CommitteeDispute"]
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="lacks CommitteeDispute"):
        load_manifest(31337, tmp_path)


def test_manifest_of_another_chain_under_this_name_is_rejected(tmp_path):
    save_manifest(make_manifest(5), tmp_path)
    (tmp_path / "5.json").rename(tmp_path / "31337.json")
    with pytest.raises(ManifestError, match="describes chain 5, not 31337"):
        load_manifest(31337, tmp_path)


def test_unknown_format_is_rejected(tmp_path):
    path = save_manifest(make_manifest(), tmp_path)
    data = json.loads(path.read_text())
    data["format"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="unsupported manifest format 99"):
        load_manifest(31337, tmp_path)


def test_address_of_unknown_contract_is_a_clear_error():
    with pytest.raises(ManifestError, match="has no contract 'Nope'"):
        make_manifest().address("Nope")
