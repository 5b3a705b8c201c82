"""One whole local network for the experiment tests of this folder: its own anvil on BMOE_ANVIL_PORT + 20 (not
brownie's test chain: the experiments' processes need a chain that function isolation never reverts), the suite
deployed there with its manifest in the network's own folder, the embedded IPFS node on a free port. Package
scope: the experiments share the published models and honest nodes (experiments.testbed caches them on the
network), which is what keeps their fast settings at a few minutes together."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_networks import running_network

from bmoe_py.experiments.localnet import LocalNetwork


@pytest.fixture(scope="package")
def local_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from running_network(tmp_path_factory, "localnet", port_offset=20)


@pytest.fixture(scope="package")
def results_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("results")
