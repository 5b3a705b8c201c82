"""A whole LocalNetwork (anvil, the suite deployed, the embedded IPFS node) for one test folder, on its own chain
port (BMOE_ANVIL_PORT + an offset per folder) and a free IPFS port, so that folders never share a chain."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from bmoe_py.experiments.localnet import LocalNetwork


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running_network(tmp_path_factory: pytest.TempPathFactory, name: str, port_offset: int) -> Iterator[LocalNetwork]:
    """Yields the started network; stops every process and the chain afterwards (a fixture's body)."""
    chain_port = int(os.environ.get("BMOE_ANVIL_PORT", "8555")) + port_offset
    net = LocalNetwork(tmp_path_factory.mktemp(name), chain_port=chain_port, ipfs_port=free_port())
    with net:
        net.start_chain()
        net.deploy(force=True)  # a chain left on the port by an earlier run may hold an older suite
        net.start_ipfs()
        yield net
    net.stop_chain()
