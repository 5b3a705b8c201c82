"""Edge nodes as real processes (`bmoe edge`) for end-to-end tests.

    edge = start_edge(network.env(), model_id, [0, 1], key, tmp_path, window_seconds=2)
    requests.get(edge.url + "/v1/health")
    edge.stop()          # SIGTERM, waits, returns the exit code
    edge.kill()          # SIGKILL: a crash, the state dir stays for a restart

`flags` are `bmoe edge` options with underscores: `attack="gaussian"`, `attack_fraction=0.5`, `state_dir=...`
(default: `tmp_dir/"state-<address>"`, so a second `start_edge` with the same key and tmp_dir resumes the first);
`window_seconds` defaults to 2 here (10 in `bmoe edge`) so that tests see commitments soon. `rpc=`/`ipfs=` override
the network's endpoints.
The key travels in the environment only.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0


class EdgeStartError(RuntimeError):
    """The node exited or did not become ready in time; the message holds its log."""


@dataclass
class EdgeProcess:
    process: subprocess.Popen
    url: str
    address: str
    state_dir: Path
    log_path: Path

    @property
    def log(self) -> str:
        """Everything the node has logged so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. The exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL, as a crash would (nothing is flushed or cleaned up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """Blocks until `text` is in the log; the log. Raises AssertionError with the log on timeout."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log):
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{text!r} not in the log of edge node {self.address} after {timeout}s:\n{log}")
            time.sleep(0.1)
        return log


def edge_command(model_id: int, experts: Iterable[int], **flags: object) -> list[str]:
    command = [sys.executable, "-m", "bmoe_py.cli.main", "edge", "--model", str(model_id),
               "--experts", ",".join(str(e) for e in experts)]  # fmt: skip
    for name, value in flags.items():
        if value is None or value is False:
            continue
        command.append("--" + name.replace("_", "-"))
        if value is not True:
            command.append(str(value))
    return command


def start_edge(
    network_env: Mapping[str, str], model_id: int, experts: Iterable[int], key: str, tmp_dir: Path,
    *, timeout: float = START_TIMEOUT, **flags: object,
) -> EdgeProcess:  # fmt: skip
    """Starts `bmoe edge` with `key` (0x-hex; staked and registered by the node itself) and waits until it serves."""
    address = Account.from_key(key).address
    tmp_dir = Path(tmp_dir)
    state_dir = Path(flags.pop("state_dir", None) or tmp_dir / f"state-{address}")  # type: ignore[arg-type]
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready.json"
    ready.unlink(missing_ok=True)
    log_path = state_dir / "edge.log"
    flags.setdefault("window_seconds", 2)
    command = edge_command(model_id, experts, state_dir=state_dir, ready_file=ready, **flags)
    env = {**network_env, "PYTHONPATH": str(ROOT), "BMOE_PRIVATE_KEY": key}
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_dir)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait()
            raise EdgeStartError(
                f"edge node {address} did not start (exit code {process.returncode}):\n{log_path.read_text(errors='replace')}"
            )
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return EdgeProcess(process, info["url"], info["node"], state_dir, log_path)
