"""`brownie run deploy` on the development chain: the suite is deployed in protocol order, wired, and described by a
manifest whose addresses and ABIs are those of the deployed contracts."""
import json

import pytest
from brownie import CommitteeDispute, ExpertRegistry, FraudProof, ResultLedger, Screening, Staking, accounts, web3

from bmoe_py.chain.deploy import DAY, HOUR, DeployParams
from bmoe_py.chain.manifest import CONTRACT_NAMES, abi_hash, load_manifest
from deploy_env import run_deploy_script
from helpers import reverts_with

CONTAINERS = {
    "Staking": Staking,
    "ExpertRegistry": ExpertRegistry,
    "ResultLedger": ResultLedger,
    "FraudProof": FraudProof,
    "CommitteeDispute": CommitteeDispute,
    "Screening": Screening,
}


@pytest.fixture(scope="module")
def manifest(deployed, deployments):
    return load_manifest(web3.eth.chain_id, deployments)


def test_manifest_records_the_address_of_every_deployed_contract(deployed, manifest):
    assert set(manifest.contracts) == set(CONTRACT_NAMES)
    for name in CONTRACT_NAMES:
        assert manifest.contracts[name].address == deployed[name].address


def test_manifest_abis_are_the_compiled_abis_with_their_hashes(manifest):
    for name, container in CONTAINERS.items():
        record = manifest.contracts[name]
        assert record.abi == container.abi
        assert record.abi_hash == abi_hash(container.abi)


def test_manifest_describes_chain_deployer_and_block(deployed, manifest):
    staking_tx = deployed["Staking"].tx
    assert manifest.chain_id == web3.eth.chain_id
    assert manifest.network == "development"
    assert manifest.deployer == accounts[0].address
    assert manifest.deploy_block == staking_tx.block_number
    assert manifest.deploy_block_hash == "0x" + bytes(web3.eth.get_block(staking_tx.block_number)["hash"]).hex()
    assert manifest.confirmations == 1
    assert manifest.compiler["version"].startswith("0.8.28")


def test_manifest_records_the_default_parameters(manifest):
    assert manifest.parameters == DeployParams().to_dict()


def test_contracts_are_deployed_with_the_default_parameters(deployed):
    params = DeployParams()
    assert deployed["Staking"].unbondingDelay() == 7 * DAY
    assert deployed["ExpertRegistry"].longestDispute() == 2 * DAY + HOUR
    assert deployed["FraudProof"].bond() == params.fraud_bond
    assert deployed["FraudProof"].responseWindow() == DAY
    assert deployed["FraudProof"].proofWindow() == DAY
    assert deployed["CommitteeDispute"].bond() == params.committee_bond
    assert deployed["CommitteeDispute"].committeeSize() == 5
    assert deployed["CommitteeDispute"].nonRevealPenalty() == 10**16


def test_contracts_point_at_each_other(deployed):
    staking, registry, ledger = deployed["Staking"], deployed["ExpertRegistry"], deployed["ResultLedger"]
    assert registry.staking() == staking
    assert ledger.registry() == registry
    assert ledger.staking() == staking
    for module in (deployed["FraudProof"], deployed["CommitteeDispute"]):
        assert module.ledger() == ledger
        assert module.registry() == registry
        assert module.staking() == staking
    assert deployed["Screening"].registry() == registry


def test_both_dispute_modules_are_slashers_and_nobody_else(deployed):
    staking = deployed["Staking"]
    assert staking.isSlasher(deployed["FraudProof"])
    assert staking.isSlasher(deployed["CommitteeDispute"])
    assert not staking.isSlasher(accounts[0])


def test_both_dispute_modules_are_ledger_modules_and_nobody_else(deployed):
    ledger = deployed["ResultLedger"]
    assert ledger.isDisputeModule(deployed["FraudProof"])
    assert ledger.isDisputeModule(deployed["CommitteeDispute"])
    assert not ledger.isDisputeModule(accounts[0])


def test_wiring_is_final(deployed):
    with reverts_with("SlashersAlreadySet()"):
        deployed["Staking"].setSlashers([accounts[1]], {"from": accounts[0]})
    with reverts_with("DisputeModulesAlreadySet()"):
        deployed["ResultLedger"].setDisputeModules([accounts[1]], {"from": accounts[0]})


def test_second_deploy_refuses_to_replace_a_live_manifest(deployed, deployments, capsys):
    path = deployments / f"{web3.eth.chain_id}.json"
    before = path.read_text()
    nonce = accounts[0].nonce
    with pytest.raises(SystemExit) as exc:
        run_deploy_script(deployments)
    assert exc.value.code == 1
    assert "still live" in capsys.readouterr().err
    assert path.read_text() == before
    assert accounts[0].nonce == nonce


def test_redeploy_flag_keeps_the_live_manifest_aside(tmp_path):
    run_deploy_script(tmp_path)
    path = tmp_path / f"{web3.eth.chain_id}.json"
    old = json.loads(path.read_text())
    new = run_deploy_script(tmp_path, BMOE_REDEPLOY="1")
    assert json.loads((tmp_path / f"{web3.eth.chain_id}.{old['deploy_block']}.json").read_text()) == old
    assert json.loads(path.read_text())["contracts"]["Staking"]["address"] == new["Staking"].address


def test_parameters_come_from_the_environment(tmp_path):
    deployed = run_deploy_script(tmp_path, BMOE_UNBONDING_DELAY="10d", BMOE_FRAUD_BOND="0.5ether", BMOE_COMMITTEE_SIZE="7")
    manifest = load_manifest(web3.eth.chain_id, tmp_path)
    assert deployed["Staking"].unbondingDelay() == 10 * DAY
    assert deployed["FraudProof"].bond() == 5 * 10**17
    assert deployed["CommitteeDispute"].committeeSize() == 7
    assert manifest.parameters["fraud_bond"] == 5 * 10**17


def test_invalid_parameter_fails_before_deploying(tmp_path, capsys):
    nonce = accounts[0].nonce
    with pytest.raises(SystemExit):
        run_deploy_script(tmp_path, BMOE_UNBONDING_DELAY="1h")
    assert "unbonding_delay" in capsys.readouterr().err
    assert accounts[0].nonce == nonce
    assert not (tmp_path / f"{web3.eth.chain_id}.json").exists()
