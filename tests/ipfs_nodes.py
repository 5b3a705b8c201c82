"""Real IPFS nodes for the tests that need one (storage and end to end): each node is its own `bmoe ipfs daemon`
process on a temporary repository, with OS-assigned API and swarm ports (several test runs can share a machine),
and a tampering proxy to put in front of one.

    daemon = start_daemon(tmp_path / "node")
    with daemon.client() as client:
        ...
    daemon.stop()
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from bmoe_py.storage.client import IpfsClient, normalize_api_url

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0


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
    """Start `bmoe ipfs daemon` on `repo` and wait until it has written its API address."""
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
    # The daemon creates the file and then writes the address, so the file can exist and still be empty: wait for
    # the address itself (read as empty, it becomes the hostless URL "http://").
    while not (address := _read_address(api_file)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"daemon on {repo} did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return Daemon(repo, process, log, normalize_api_url(address))


def _read_address(api_file: Path) -> str:
    try:
        return api_file.read_text().strip()
    except FileNotFoundError:
        return ""


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
