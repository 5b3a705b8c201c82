"""A whole local network for the coordinator's end-to-end tests: its own anvil on BMOE_ANVIL_PORT + 22 (the
experiments' is + 20), the suite deployed there, the embedded IPFS node on a free port; one for the folder."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_networks import running_network

from bmoe_py.experiments.localnet import LocalNetwork


@pytest.fixture(scope="package")
def training_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    yield from running_network(tmp_path_factory, "trainnet", port_offset=22)
