"""bmoe_py.chain.client: the web3-only client that edge nodes, publishers and validators use, against the suite that
`brownie run deploy` put on the test chain."""
import json

import pytest
from brownie import accounts
from eth_account import Account

from bmoe_py.chain.client import ChainError, TransactionReverted, connect
from bmoe_py.chain.manifest import ManifestError, ManifestNotFound

ETH = 10**18


@pytest.fixture(scope="module")
def key():
    """A fresh local key with ETH: the client signs for it itself, the node holds no account for it."""
    account = Account.create()
    accounts[0].transfer(account.address, 100 * ETH)
    return account.key


@pytest.fixture(scope="module")
def chain(deployed, deployments, rpc_url, key):
    return connect(rpc_url, key, deployments_dir=deployments)


def test_handles_point_at_the_deployed_contracts(chain, deployed):
    assert chain.staking.address == deployed["Staking"].address
    assert chain.registry.address == deployed["ExpertRegistry"].address
    assert chain.ledger.address == deployed["ResultLedger"].address
    assert chain.fraud_proof.address == deployed["FraudProof"].address
    assert chain.committee.address == deployed["CommitteeDispute"].address
    assert chain.screening.address == deployed["Screening"].address


def test_views_read_the_deployment(chain, deployed):
    assert chain.staking.functions.unbondingDelay().call() == deployed["Staking"].unbondingDelay()
    assert chain.call(chain.committee.functions.committeeSize()) == 5
    assert chain.staking.functions.isSlasher(chain.fraud_proof.address).call()


def test_send_signs_with_the_local_key(chain, deployed):
    receipt = chain.send(chain.staking.functions.deposit(), value=2 * ETH)
    assert receipt["status"] == 1
    assert deployed["Staking"].stakeOf(chain.address) == 2 * ETH


def test_events_decodes_the_logs_of_a_receipt(chain):
    receipt = chain.send(chain.staking.functions.deposit(), value=ETH)
    (event,) = chain.events(receipt, "Staking", "Deposited")
    assert event["account"] == chain.address
    assert event["amount"] == ETH


def test_reverting_send_raises_the_decoded_custom_error_before_sending(chain):
    nonce = chain.w3.eth.get_transaction_count(chain.address)
    with pytest.raises(TransactionReverted) as exc:
        chain.send(chain.staking.functions.requestUnbond(5 * ETH))
    assert exc.value.name == "InsufficientStake"
    assert exc.value.error.contract == "Staking"
    assert exc.value.error.args == {"available": 0, "requested": 5 * ETH}
    assert exc.value.receipt is None
    assert chain.w3.eth.get_transaction_count(chain.address) == nonce


def test_transaction_reverted_when_mined_carries_the_error_and_receipt(chain):
    # An explicit gas limit skips estimation, so the transaction is mined and reverts on chain.
    with pytest.raises(TransactionReverted) as exc:
        chain.send(chain.staking.functions.requestUnbond(5 * ETH), gas=200_000)
    assert exc.value.name == "InsufficientStake"
    assert exc.value.receipt["status"] == 0
    assert "Staking.requestUnbond reverted: Staking.InsufficientStake(available=0, requested=5000000000000000000)" in str(
        exc.value
    )


def test_reverting_call_raises_the_decoded_custom_error(chain):
    with pytest.raises(TransactionReverted) as exc:
        chain.call(chain.staking.functions.withdraw())
    assert exc.value.name == "NothingToWithdraw"


def test_connection_without_key_reads_but_cannot_send(deployments, rpc_url):
    reader = connect(rpc_url, deployments_dir=deployments)
    assert reader.staking.functions.unbondingDelay().call() > 0
    with pytest.raises(ChainError, match="no private key"):
        reader.send(reader.staking.functions.deposit(), value=1)


def test_connect_without_manifest_says_how_to_deploy(rpc_url, tmp_path):
    with pytest.raises(ManifestNotFound, match=r"no deployment for chain \d+ .*: run `make deploy`"):
        connect(rpc_url, deployments_dir=tmp_path)


def test_connect_to_a_stale_manifest_fails(deployments, rpc_url, tmp_path):
    data = json.loads(next(deployments.glob("*.json")).read_text())
    data["deploy_block_hash"] = "0x" + "11" * 32  # as if the chain had been reset since
    (tmp_path / f"{data['chain_id']}.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="stale: .*chain was reset"):
        connect(rpc_url, deployments_dir=tmp_path)


def test_connect_to_a_tampered_abi_fails(deployments, rpc_url, tmp_path):
    data = json.loads(next(deployments.glob("*.json")).read_text())
    data["contracts"]["Staking"]["abi"] = data["contracts"]["Staking"]["abi"][1:]
    (tmp_path / f"{data['chain_id']}.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="ABI of Staking does not match its abi_hash"):
        connect(rpc_url, deployments_dir=tmp_path)


def test_connect_to_nothing_says_so():
    with pytest.raises(ChainError, match="no Ethereum node answers at http://127.0.0.1:1"):
        connect("http://127.0.0.1:1", timeout=2)
