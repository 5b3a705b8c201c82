"""Shared fixtures. Brownie's plugin launches anvil (the `development` network) on BMOE_ANVIL_PORT
(default 8555): never 8545, where `make deploy` keeps a user's long-lived chain that a test run must not
attach to, snapshot and revert; and one port per run, so that several runs on one machine do not share a chain."""
import os

import pytest


def pytest_configure(config):
    from brownie._config import CONFIG

    CONFIG.networks["development"]["cmd_settings"]["port"] = int(os.environ.get("BMOE_ANVIL_PORT", "8555"))


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass
