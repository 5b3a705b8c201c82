"""Real IPFS nodes for the storage tests: each node is its own `bmoe ipfs daemon` process on a temporary
repository, with OS-assigned API and swarm ports (several test runs can share a machine)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from bmoe_py.storage.client import IpfsClient, normalize_api_url

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def isolation():
    """Overrides the chain isolation of tests/conftest.py: these tests use no chain."""


@dataclass
class Daemon:
    repo: Path
    process: subprocess.Popen
    log: Path
    api: str

    def client(self, **kwargs) -> IpfsClient:
        return IpfsClient(self.api, **kwargs)

    def swarm_address(self) -> str:
        with self.client() as client:
            return client.id().addresses[0]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the daemon and wait for it to exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"daemon on {self.repo} ignored {signal.Signals(sig).name} for {timeout}s:\n{self.log.read_text()}")
        return self.process.returncode


def start_daemon(repo: Path, *extra: str) -> Daemon:
    """Start `bmoe ipfs daemon` on `repo` and wait until its API answers."""
    repo.mkdir(parents=True, exist_ok=True)
    api_file = repo / "api"
    api_file.unlink(missing_ok=True)
    log = repo.parent / f"{repo.name}.daemon.log"
    command = [
        sys.executable, "-m", "bmoe_py.cli.main", "ipfs", "daemon", "--repo", str(repo),
        "--api-port", "0", "--swarm-host", "127.0.0.1", "--swarm-port", "0", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=repo.parent, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while not api_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"daemon on {repo} did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return Daemon(repo, process, log, normalize_api_url(api_file.read_text()))


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


class TamperingProxy(ThreadingHTTPServer):
    """A man in the middle between a client and a node's API: it forwards every request and flips one
    byte of every `cat` answer (what a malicious gateway or a corrupted disk would do)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: TamperingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {"Content-Type": self.headers["Content-Type"]} if self.headers.get("Content-Type") else {}
        upstream = requests.post(self.server.upstream + self.path, data=body, headers=headers, timeout=60)
        content = upstream.content
        if self.path.startswith("/api/v0/cat") and upstream.status_code == 200 and content:
            middle = len(content) // 2
            content = content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1 :]
        self.send_response(upstream.status_code)
        for name in ("Content-Type", "X-Content-Length"):
            if name in upstream.headers:
                self.send_header(name, upstream.headers[name])
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tampering_proxy(node_a: Daemon) -> Iterator[TamperingProxy]:
    proxy = TamperingProxy(node_a.api)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()
