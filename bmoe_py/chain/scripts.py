"""Run a brownie script (a file of `scripts/`) in the current brownie session, whatever the checkout's path.

brownie 1.22's own `run` (behind `brownie run NAME`) imports a script under a module name made of every folder of
its absolute path joined with dots, so it fails with `ModuleNotFoundError` whenever a folder name contains a dot
(`/tmp/tmp.x3Fq/scripts/deploy.py` becomes module `tmp.tmp.x3Fq.scripts.deploy`), as in a clone made by
`mktemp -d`. This imports the file by path instead; the tests and the `python scripts/<name>.py` entry points use it.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any


def run_script(path: str | Path, method_name: str = "main", args: tuple = (), kwargs: dict | None = None) -> Any:
    """Imports the script at `path` under a dot-free module name and calls `method_name(*args, **kwargs)`."""
    from brownie import project

    for loaded in project.get_loaded_projects():
        loaded._add_to_main_namespace()  # what brownie's run does, so that `from brownie import <Contract>` works
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"bmoe_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no brownie script at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there while the script executes
    spec.loader.exec_module(module)
    return getattr(module, method_name)(*args, **(kwargs or {}))


def connect(network_id: str, root: Path) -> None:
    """Loads the brownie project at `root` and connects to `network_id`, as `brownie run --network` does.
    The development network's anvil is launched on $BMOE_ANVIL_PORT (default 8555), as for the tests."""
    import os

    from brownie import network, project
    from brownie._config import CONFIG

    active = project.load(root)
    active.load_config()
    CONFIG.networks["development"]["cmd_settings"]["port"] = int(os.environ.get("BMOE_ANVIL_PORT", "8555"))
    network.connect(network_id)
