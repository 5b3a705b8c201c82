"""Shared fixtures. Brownie's plugin launches anvil (the `development` network) on BMOE_ANVIL_PORT
(default 8545), so that several test runs on one machine do not share a chain."""
import os

import pytest


def pytest_configure(config):
    port = os.environ.get("BMOE_ANVIL_PORT")
    if port:
        from brownie._config import CONFIG

        for net in ("development",):
            CONFIG.networks[net]["cmd_settings"]["port"] = int(port)


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass
