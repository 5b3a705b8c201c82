"""A whole local network for end-to-end tests: the contract suite deployed on brownie's anvil, its manifest in a
temporary `deployments/` folder, a funded publisher key that only the web3 client knows, and a real embedded IPFS
node (`bmoe ipfs daemon`, tests/ipfs_nodes.py)."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from bmoe_py.chain.client import Chain, connect
from bmoe_py.chain.deploy import DeployParams, build_manifest, deploy_suite
from bmoe_py.chain.manifest import Manifest, save_manifest
from bmoe_py.storage.client import IpfsClient

from ipfs_nodes import Daemon, TamperingProxy, start_daemon

ROOT = Path(__file__).resolve().parents[2]
ETHER = 10**18


@dataclass(frozen=True)
class Network:
    rpc_url: str
    deployments: Path
    manifest: Manifest
    ipfs: Daemon
    publisher_key: str

    def chain(self, key: str | None = None) -> Chain:
        """A web3 connection as a client process would open it (the publisher's key unless another is given)."""
        return connect(self.rpc_url, key or self.publisher_key, deployments_dir=self.deployments)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a `bmoe` subprocess pointed at this network."""
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BMOE_RPC_URL": self.rpc_url,
            "BMOE_IPFS_API": self.ipfs.api,
            "BMOE_DEPLOYMENTS_DIR": str(self.deployments),
            "BMOE_PRIVATE_KEY": self.publisher_key,
            **extra,
        }


@pytest.fixture(scope="module")
def ipfs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path_factory.mktemp("ipfs") / "node")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def network(accounts, web3, tmp_path_factory: pytest.TempPathFactory, ipfs_node: Daemon) -> Network:
    deployer = accounts[0]
    params = DeployParams()
    deployed = deploy_suite(deployer, params, log=lambda line: None)
    manifest = build_manifest(
        deployed,
        chain_id=web3.eth.chain_id,
        network="development",
        deployer=deployer.address,
        params=params,
        confirmations=1,
        block_hash=lambda n: "0x" + bytes(web3.eth.get_block(n)["hash"]).hex(),
    )
    deployments = tmp_path_factory.mktemp("deployments")
    save_manifest(manifest, deployments)
    publisher = Account.create()
    deployer.transfer(publisher.address, 10 * ETHER)
    return Network(
        rpc_url=web3.provider.endpoint_uri,
        deployments=deployments,
        manifest=manifest,
        ipfs=ipfs_node,
        publisher_key="0x" + bytes(publisher.key).hex(),
    )


@pytest.fixture(scope="module")
def ipfs(network: Network) -> Iterator[IpfsClient]:
    """A client of the network's IPFS node."""
    with IpfsClient(network.ipfs.api, timeout=20) as client:
        yield client


@pytest.fixture
def tampering_proxy(ipfs_node: Daemon) -> Iterator[TamperingProxy]:
    """A man in the middle in front of the node that flips a byte of every `cat` answer."""
    proxy = TamperingProxy(ipfs_node.api)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()
