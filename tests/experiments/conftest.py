"""One whole local network for the experiment tests of this folder: its own anvil on BMOE_ANVIL_PORT + 20 (not
brownie's test chain: the experiments' processes need a chain that function isolation never reverts), the suite
deployed there with its manifest in the network's own folder, the embedded IPFS node on a free port. Package
scope: the experiments share the published models and honest nodes (experiments.testbed caches them on the
network), which is what keeps their fast settings at a few minutes together."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from bmoe_py.experiments.localnet import LocalNetwork


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="package")
def local_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    chain_port = int(os.environ.get("BMOE_ANVIL_PORT", "8555")) + 20
    net = LocalNetwork(tmp_path_factory.mktemp("localnet"), chain_port=chain_port, ipfs_port=_free_port())
    with net:
        net.start_chain()
        net.deploy(force=True)  # a chain left on the port by an earlier run may hold an older suite
        net.start_ipfs()
        yield net
    net.stop_chain()


@pytest.fixture(scope="package")
def results_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("results")
