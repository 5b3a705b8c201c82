"""`brownie run deploy --network <live network>` as a user runs it against a public chain: a separate anvil that mines
a block every second, declared as a live brownie network, the deployer's key in BMOE_DEPLOYER_KEY, two
confirmations per transaction; then the web3-only client uses the manifest it wrote."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account

from bmoe_py.chain.client import connect
from tools.brownie_networks import remove_network, upsert_live_network
from tools.local_chain import anvil_binary, rpc_chain_id

ROOT = Path(__file__).resolve().parents[2]
BROWNIE = str(Path(sys.executable).parent / "brownie")
CHAIN_ID = 31415  # not anvil's default, so that nothing can mix this chain up with the local one
MNEMONIC = "test test test test test test test test test test test junk"  # anvil's well-known dev accounts
ETH = 10**18


def dev_key(index: int) -> str:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.hex()


class Anvil:
    """A throwaway chain on `port`; with `block_time` it mines every so many seconds, like a public chain."""

    def __init__(self, port: int, log: Path, block_time: int | None = None):
        self.port = port
        self.log = log
        self.block_time = block_time
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if rpc_chain_id(self.port) is not None:
            raise RuntimeError(f"port {self.port} is taken by another chain")
        cmd = [anvil_binary(), "--port", str(self.port), "--chain-id", str(CHAIN_ID)]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while rpc_chain_id(self.port) is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"anvil did not start on port {self.port}: see {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        while rpc_chain_id(self.port) is not None:
            time.sleep(0.1)

    def restart(self) -> None:
        """A fresh chain on the same port: what a reset local chain or a wiped testnet fork looks like."""
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def live_network(tmp_path_factory):
    """An anvil on port 8615 mining every second, declared in brownie's network config as a live network (removed
    afterwards)."""
    anvil = Anvil(8615, tmp_path_factory.mktemp("anvil") / "anvil.log", block_time=1)
    network_id = f"bmoe-test-{anvil.port}"
    anvil.start()
    upsert_live_network({"name": "B-MoE test chain", "id": network_id, "chainid": CHAIN_ID, "host": anvil.url})
    yield network_id, anvil
    remove_network(network_id)
    anvil.stop()


@pytest.fixture
def reset_network(tmp_path):
    """A second live network (port 8616) for the test that resets its chain; it mines on demand, so that one
    confirmation per transaction does not wait for the next block."""
    anvil = Anvil(8616, tmp_path / "anvil.log")
    network_id = f"bmoe-test-{anvil.port}"
    anvil.start()
    upsert_live_network({"name": "B-MoE test chain (reset)", "id": network_id, "chainid": CHAIN_ID, "host": anvil.url})
    yield network_id, anvil
    remove_network(network_id)
    anvil.stop()


def brownie_deploy(network_id: str, deployments: Path, *, via_brownie_run: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`python scripts/deploy.py --network <id>` (or `brownie run deploy --network <id>`) in a subprocess, with only
    the given deployer settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BMOE_")}
    environ.update(BMOE_DEPLOYMENTS_DIR=str(deployments), **env)
    command = [BROWNIE, "run", "deploy"] if via_brownie_run else [sys.executable, "scripts/deploy.py"]
    return subprocess.run(
        [*command, "--network", network_id],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def live_deployment(live_network, tmp_path_factory):
    network_id, anvil = live_network
    deployments = tmp_path_factory.mktemp("live-deployments")
    result = brownie_deploy(network_id, deployments, BMOE_DEPLOYER_KEY=dev_key(1))
    assert result.returncode == 0, result.stdout + result.stderr
    return anvil, deployments, result


def manifest_of(deployments: Path) -> dict:
    return json.loads((deployments / f"{CHAIN_ID}.json").read_text())


def test_live_deploy_writes_the_manifest_of_the_chain(live_deployment, live_network):
    anvil, deployments, _ = live_deployment
    manifest = manifest_of(deployments)
    assert manifest["chain_id"] == CHAIN_ID
    assert manifest["network"] == live_network[0]
    assert manifest["deployer"] == Account.from_key(dev_key(1)).address


def test_live_deploy_waits_for_two_confirmations_by_default(live_deployment):
    _, deployments, result = live_deployment
    assert manifest_of(deployments)["confirmations"] == 2
    confirmations = [int(n) for n in re.findall(r"gas \d+, (\d+) confirmation", result.stdout)]
    assert len(confirmations) == 8  # six deployments and two wiring transactions
    assert min(confirmations) >= 2


def test_client_reads_the_live_deployment_from_its_manifest(live_deployment):
    anvil, deployments, _ = live_deployment
    chain = connect(anvil.url, deployments_dir=deployments)
    manifest = manifest_of(deployments)
    assert chain.staking.address == manifest["contracts"]["Staking"]["address"]
    assert chain.staking.functions.unbondingDelay().call() == 7 * 24 * 3600
    assert chain.staking.functions.isSlasher(chain.fraud_proof.address).call()
    assert chain.ledger.functions.isDisputeModule(chain.committee.address).call()


def test_client_sends_transactions_to_the_live_deployment(live_deployment):
    anvil, deployments, _ = live_deployment
    chain = connect(anvil.url, dev_key(2), deployments_dir=deployments)
    before = chain.staking.functions.stakeOf(chain.address).call()
    chain.send(chain.staking.functions.deposit(), value=ETH)
    assert chain.staking.functions.stakeOf(chain.address).call() == before + ETH


def test_second_live_deploy_refuses_to_overwrite_a_live_manifest(live_deployment, live_network):
    anvil, deployments, _ = live_deployment
    before = (deployments / f"{CHAIN_ID}.json").read_text()
    chain = connect(anvil.url, deployments_dir=deployments)
    deployer = Account.from_key(dev_key(1)).address
    nonce = chain.w3.eth.get_transaction_count(deployer)
    result = brownie_deploy(live_network[0], deployments, BMOE_DEPLOYER_KEY=dev_key(1))
    assert result.returncode == 1
    assert "describes a deployment that is still live" in result.stderr
    assert (deployments / f"{CHAIN_ID}.json").read_text() == before
    assert chain.w3.eth.get_transaction_count(deployer) == nonce


@pytest.mark.skipif(
    any("." in part for part in ROOT.parts[1:]),
    reason="brownie 1.22's `run` cannot import a script from a path with a dot in a folder name "
    "(bmoe_py/chain/scripts.py); the tests above run the same script as `python scripts/deploy.py`",
)
def test_brownie_run_deploy_deploys_to_the_live_network(live_network, tmp_path):
    network_id, _ = live_network
    result = brownie_deploy(network_id, tmp_path, via_brownie_run=True, BMOE_DEPLOYER_KEY=dev_key(2))
    assert result.returncode == 0, result.stdout + result.stderr
    assert manifest_of(tmp_path)["chain_id"] == CHAIN_ID


def test_live_deploy_without_key_fails_clearly(live_network, tmp_path):
    result = brownie_deploy(live_network[0], tmp_path)
    assert result.returncode == 1
    assert "no deployer account for network" in result.stderr
    assert "set BMOE_DEPLOYER_KEY" in result.stderr
    assert not list(tmp_path.glob("*.json"))


def test_live_deploy_after_chain_reset_replaces_the_manifest(reset_network, tmp_path):
    network_id, anvil = reset_network
    first = brownie_deploy(network_id, tmp_path, BMOE_DEPLOYER_KEY=dev_key(1), BMOE_CONFIRMATIONS="1")
    assert first.returncode == 0, first.stdout + first.stderr
    old = manifest_of(tmp_path)
    anvil.restart()
    second = brownie_deploy(network_id, tmp_path, BMOE_DEPLOYER_KEY=dev_key(1), BMOE_CONFIRMATIONS="1")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "its deployment is gone" in second.stdout
    new = manifest_of(tmp_path)
    assert new["deploy_block_hash"] != old["deploy_block_hash"]
    connect(anvil.url, deployments_dir=tmp_path)  # the new manifest describes the new chain
