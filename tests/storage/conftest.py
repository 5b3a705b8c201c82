"""Fixtures of the storage tests: real IPFS nodes (tests/ipfs_nodes.py), one per test or shared by a module."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from ipfs_nodes import Daemon, TamperingProxy, start_daemon


@pytest.fixture(autouse=True)
def isolation():
    """Overrides the chain isolation of tests/conftest.py: these tests use no chain."""


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons for one test (`spawn("name")`); they are stopped after it."""
    daemons: list[Daemon] = []

    def spawn_one(name: str = "node", *extra: str) -> Daemon:
        daemons.append(start_daemon(tmp_path / name, *extra))
        return daemons[-1]

    yield spawn_one
    for daemon in daemons:
        daemon.stop()


@pytest.fixture(scope="module")
def node_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path_factory.mktemp("ipfs") / "a")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def node_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path_factory.mktemp("ipfs") / "b")
    yield daemon
    daemon.stop()


@pytest.fixture
def tampering_proxy(node_a: Daemon) -> Iterator[TamperingProxy]:
    proxy = TamperingProxy(node_a.api)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()
