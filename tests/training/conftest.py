"""A whole local network for the coordinator's end-to-end tests: its own anvil on BMOE_ANVIL_PORT + 22 (the
experiments' is + 20), the suite deployed there, the embedded IPFS node on a free port; one for the folder."""
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
def training_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    chain_port = int(os.environ.get("BMOE_ANVIL_PORT", "8555")) + 22
    net = LocalNetwork(tmp_path_factory.mktemp("trainnet"), chain_port=chain_port, ipfs_port=_free_port())
    with net:
        net.start_chain()
        net.deploy(force=True)
        net.start_ipfs()
        yield net
    net.stop_chain()
