"""Running scripts/deploy.py from tests: environment variables set for one call, manifests in a temporary folder."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bmoe_py.chain.scripts import run_script


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Sets (or, with None, unsets) environment variables for the duration of the block."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_deploy_script(deployments: Path, **env: str | None):
    """Runs scripts/deploy.py the way `brownie run deploy` does, on the test chain; returns {name: Contract}."""
    with environment(BMOE_DEPLOYMENTS_DIR=str(deployments), BMOE_DEPLOYER_KEY=None, BMOE_DEPLOYER_ACCOUNT=None, **env):
        return run_script("scripts/deploy.py")
