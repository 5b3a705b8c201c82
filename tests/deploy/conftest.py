"""Fixtures for the deployment tests: a deployment made by `scripts/deploy.py` on the test chain, with its
manifest in a temporary folder (BMOE_DEPLOYMENTS_DIR) so that the repository's deployments/ is never touched."""
from __future__ import annotations

from pathlib import Path

import pytest
from brownie import web3

from deploy_env import run_deploy_script


@pytest.fixture(scope="module")
def deployments(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("deployments")


@pytest.fixture(scope="module")
def deployed(module_isolation, deployments):
    """The suite as `brownie run deploy` leaves it on the development chain. (Depending on module_isolation makes
    brownie reset the chain before this deployment, not after it.)"""
    return run_deploy_script(deployments)


@pytest.fixture(scope="module")
def rpc_url() -> str:
    """The test chain's JSON-RPC URL, for the web3-only client."""
    return web3.provider.endpoint_uri
