"""The edge node tests run against the same whole local network as tests/e2e (anvil with the suite deployed, a real
`bmoe ipfs daemon`), plus a small exact model published with a short challenge window, and funded node keys."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from eth_account import Account

def _e2e_fixtures():
    """tests/e2e/conftest.py, loaded under its own name (every conftest module is called `conftest`)."""
    path = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("e2e_conftest", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_e2e = _e2e_fixtures()
ETHER, Network, ipfs_node, network, ipfs = _e2e.ETHER, _e2e.Network, _e2e.ipfs_node, _e2e.network, _e2e.ipfs  # reused fixtures

from bmoe_py.model.moe import MoEConfig, MoEModel  # noqa: E402
from bmoe_py.model.quantize import quantize_model  # noqa: E402
from bmoe_py.publisher.prepare import model_files  # noqa: E402
from bmoe_py.publisher.publish import PublishParams, publish_model  # noqa: E402
from bmoe_py.storage.client import IpfsClient  # noqa: E402

CHALLENGE_WINDOW = 8  # seconds: long enough to challenge in a test, short enough to wait for finalisation


@pytest.fixture(scope="module")
def model_id(network: Network) -> int:
    """A tiny exact model (8-wide tokens, experts 8->16->8, 3 experts), published once per module."""
    torch.manual_seed(0)
    model = MoEModel(MoEConfig(input_dim=8, num_classes=3, d_model=8, d_hidden=16, num_experts=3, k=1))
    files = model_files(model, quantize_model(model, torch.randn(256, 8)))
    with IpfsClient(network.ipfs.api, timeout=20) as ipfs:
        published = publish_model(network.chain(), ipfs, files, PublishParams(challenge_window=CHALLENGE_WINDOW))
    return published.model_id


@pytest.fixture
def node_key(accounts) -> str:
    """A fresh key with 10 ETH, known only to the node process (and this test)."""
    account = Account.create()
    accounts[0].transfer(account.address, 10 * ETHER)
    return "0x" + bytes(account.key).hex()
