"""A whole B-MoE network on one machine, made of the real parts a user would run: anvil, the contract suite, the
embedded IPFS node, and `bmoe edge` / `bmoe validator` processes talking HTTP and JSON-RPC over loopback.

    with LocalNetwork(Path(".bmoe/demo")) as net:
        net.start_chain(); net.deploy(); net.start_ipfs()
        model = net.publish_model(["--dataset", "mnist1d", ...])
        node = net.start_edge("edge-0", experts=[0, 1], attack="signflip")
        ...
    # every process this object started is stopped here, also on Ctrl-C or an exception

Used by `make demo` (tools/demo.py), the runtime benchmark and the experiments. Every process logs to
`<state_dir>/logs/<name>.log`; a process that dies while starting fails the step with the end of its log.

Several networks can run side by side on different chain and IPFS ports. Every anvil has chain id 31337, so the
deployment manifests (`<deployments>/31337.json`) would collide: a network on any chain port but 8545 keeps its
own manifest folder, `<state_dir>/deployments`, handed to every child as BMOE_DEPLOYMENTS_DIR. Port 8545 uses the
repository's `deployments/`, the one `make deploy` writes, so `make demo` reuses a deployment made there.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ETHER = 10**18
# anvil's well-known development accounts (public test keys; never use them on a real network):
# #0 deploys and funds the others, #1 publishes.
FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PUBLISHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
DEFAULT_CHAIN_PORT = 8545  # `make deploy`'s chain, brownie network `bmoe-local`

__all__ = ["LocalNetwork", "NetworkError", "Process"]


class NetworkError(RuntimeError):
    """A step of bringing the network up failed; the message says which and points at the log."""


@dataclass
class Process:
    """A `bmoe` process this network started."""

    name: str
    popen: subprocess.Popen
    log: Path
    key: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what the process wrote to its --ready-file

    @property
    def address(self) -> str | None:
        return Account.from_key(self.key).address if self.key else None

    @property
    def url(self) -> str | None:
        return self.info.get("url")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class LocalNetwork:
    def __init__(
        self, state_dir: Path, *, chain_port: int = 8545, ipfs_port: int = 5001,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
    ) -> None:  # fmt: skip
        self.state_dir = Path(state_dir).resolve()
        self.logs = self.state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.chain_port = chain_port
        self.ipfs_port = ipfs_port
        self.rpc_url = f"http://127.0.0.1:{chain_port}"
        self.ipfs_api = f"http://127.0.0.1:{ipfs_port}"
        self.say = say
        self.processes: list[Process] = []
        # what experiments run on this network share (published models, honest nodes: see experiments.testbed)
        self.shared: dict[str, Any] = {}
        self._closing = False
        self._spawning = threading.Lock()  # a process is either in self.processes or refused once closing
        self._funding = threading.Lock()  # one funding transaction at a time: they share the funder's nonces
        path = os.pathsep.join([str(Path(PY).parent), str(ROOT / "node_modules" / ".bin"), os.environ.get("PATH", "")])
        self.env = {
            **os.environ,
            "PATH": path,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "BMOE_RPC_URL": self.rpc_url,
            "BMOE_IPFS_API": self.ipfs_api,
        }
        self.env.pop("BMOE_PRIVATE_KEY", None)
        # None: the repository's deployments/ (or the caller's $BMOE_DEPLOYMENTS_DIR) on the default port
        self.deployments_dir: Path | None = None
        if chain_port != DEFAULT_CHAIN_PORT:
            self.deployments_dir = self.state_dir / "deployments"
            self.deployments_dir.mkdir(exist_ok=True)
            self.env["BMOE_DEPLOYMENTS_DIR"] = str(self.deployments_dir)

    # ------------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalNetwork:
        # SIGTERM should unwind like Ctrl-C, so that `finally` blocks stop every child process.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._spawning:
            self._closing = True  # a thread still running an experiment can start nothing new from here on
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def stop(self, process: Process, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; the exit code."""
        if process.alive():
            process.popen.send_signal(signal.SIGTERM)
            try:
                process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.say(f"{process.name} ignored SIGTERM for {timeout:.0f}s: killing it")
                process.popen.kill()
                process.popen.wait()
        with contextlib.suppress(ValueError):  # another thread may have stopped it meanwhile
            self.processes.remove(process)
        return process.popen.returncode

    def kill(self, process: Process) -> None:
        """SIGKILL: a crash, for tests of restarts."""
        process.popen.kill()
        process.popen.wait()
        with contextlib.suppress(ValueError):  # another thread may have stopped it meanwhile
            self.processes.remove(process)

    def stop_all(self) -> None:
        # Edge nodes and validators first (they may still talk to IPFS and the chain), the IPFS node last.
        for process in sorted(self.processes, key=lambda p: p.name == "ipfs"):
            self.stop(process)

    # ------------------------------------------------------------------------------------------ the parts

    def run(self, args: Sequence[str], *, capture: bool = False, env: dict[str, str] | None = None, check: bool = True):
        """Runs a command to completion in the repository, echoing it."""
        self.say("$ " + " ".join(str(a) for a in args))
        result = subprocess.run(
            [str(a) for a in args], cwd=ROOT, env=env or self.env, text=True,
            stdout=subprocess.PIPE if capture else None,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise NetworkError(f"`{' '.join(str(a) for a in args)}` failed with exit code {result.returncode}")
        return result

    def start_chain(self) -> None:
        """anvil on the chain port, started unless a chain answers there (tools/local_chain.py)."""
        self.run([PY, "tools/local_chain.py", "--ensure", "--port", self.chain_port])

    def stop_chain(self) -> None:
        """Stops the anvil that start_chain started on this port (it outlives this object otherwise, on purpose:
        `make demo` leaves its chain running for `bmoe` commands)."""
        self.run([PY, "tools/local_chain.py", "--stop", "--port", self.chain_port], check=False)

    def deploy(self, *, force: bool = False) -> None:
        """Deploys the suite unless the manifest's deployment is alive on this chain."""
        alive = not force and self.run([PY, "-m", "bmoe_py", "deploy", "--rpc", self.rpc_url], check=False).returncode == 0
        if alive:
            self.say("the deployment in the manifest is alive on this chain: reusing it")
            return
        self.run([PY, "scripts/deploy.py", "--network", self.brownie_network()])

    def brownie_network(self) -> str:
        """The brownie network that deploys to this chain: `bmoe-local` on the default port (declared by `make
        setup`), else `bmoe-local-<port>`, declared here on the fly (scripts/deploy.py treats every `bmoe-local*`
        network as a local anvil: its unlocked dev account deploys, one confirmation)."""
        if self.chain_port == DEFAULT_CHAIN_PORT:
            return "bmoe-local"
        sys.path.insert(0, str(ROOT / "tools"))
        try:
            from brownie_networks import upsert_live_network
        finally:
            sys.path.remove(str(ROOT / "tools"))
        name = f"bmoe-local-{self.chain_port}"
        upsert_live_network({"name": f"Local anvil on port {self.chain_port}", "id": name, "chainid": 31337, "host": self.rpc_url})
        return name

    def connect(self, key: str = PUBLISHER_KEY):
        """A chain client (bmoe_py.chain.client.Chain) of this network's deployment, signing with `key`."""
        from bmoe_py.chain.client import connect

        return connect(self.rpc_url, key, deployments_dir=self.deployments_dir)

    def start_ipfs(self, repo: Path | None = None, timeout: float = 60.0) -> Process:
        repo = repo or self.state_dir / "ipfs"
        process = self._spawn(
            "ipfs",
            [PY, "-m", "bmoe_py", "ipfs", "daemon", "--repo", repo, "--api-port", self.ipfs_port, "--swarm-port", "0"],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(process, "the IPFS node")
            try:
                request = urllib.request.Request(f"{self.ipfs_api}/api/v0/version", method="POST")
                with urllib.request.urlopen(request, timeout=2) as response:
                    self.say(f"IPFS node up: Kubo {json.loads(response.read()).get('Version')} at {self.ipfs_api}")
                    return process
            except OSError:
                time.sleep(0.3)
        raise NetworkError(f"the IPFS node did not answer at {self.ipfs_api} within {timeout:.0f}s; see {process.log}")

    def publish_model(self, options: Sequence[str], key: str = PUBLISHER_KEY) -> dict[str, Any]:
        """`bmoe model publish OPTIONS --json`; the parsed result (model id, accuracies, experts...)."""
        result = self.run(
            [PY, "-m", "bmoe_py", "model", "publish", *options, "--json"], capture=True, env={**self.env, "BMOE_PRIVATE_KEY": key}
        )
        return json.loads(result.stdout)

    # ------------------------------------------------------------------------------------------ accounts

    def new_key(self, fund: int = 10 * ETHER) -> str:
        """A fresh private key, funded from anvil's account #0 (each node and validator gets its own)."""
        key = "0x" + bytes(Account.create().key).hex()
        if fund:
            with self._funding:
                self._fund(Account.from_key(key).address, fund)
        return key

    def _fund(self, address: str, amount: int) -> None:
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(self.rpc_url))
        funder = Account.from_key(FUNDER_KEY)
        tx = {
            "to": address,
            "value": amount,
            "gas": 21_000,
            "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
        tx_hash = w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)

    # ------------------------------------------------------------------------------------------ roles

    def start_edge(
        self, name: str, model_id: int, experts: Sequence[int], *, key: str | None = None,
        extra: Sequence[str] = (), timeout: float = 120.0,
    ) -> Process:  # fmt: skip
        """A `bmoe edge` process (fresh funded key unless given); returns once it serves (its --ready-file)."""
        key = key or self.new_key()
        state = self._role_state(name, key)
        ready = state / "ready.json"
        state.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        args = [
            PY, "-m", "bmoe_py", "edge", "--model", model_id, "--experts", ",".join(str(e) for e in experts),
            "--port", "0", "--state-dir", state, "--ready-file", ready, *extra,
        ]  # fmt: skip
        return self._await_ready(self._spawn(name, args, key=key), ready, timeout, "edge node")

    def start_validator(
        self, name: str, model_id: int, *, key: str | None = None, extra: Sequence[str] = (), timeout: float = 120.0
    ) -> Process:
        """A `bmoe validator` process (fresh funded key unless given); returns once it watches the chain."""
        key = key or self.new_key()
        state = self._role_state(name, key)
        ready = state / "ready.json"
        state.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        args = [PY, "-m", "bmoe_py", "validator", "--model", model_id, "--state-dir", state, "--ready-file", ready, *extra]
        return self._await_ready(self._spawn(name, args, key=key), ready, timeout, "validator")

    # ------------------------------------------------------------------------------------------ internals

    def _role_state(self, name: str, key: str) -> Path:
        """A node's or validator's own state folder: per key, because a state folder belongs to one account (a node
        refuses another's), and each run of the demo stakes fresh keys; restarting with the same key finds it again."""
        return self.state_dir / "roles" / f"{name}-{Account.from_key(key).address}"

    def _spawn(self, name: str, args: Sequence[Any], key: str | None = None) -> Process:
        log = self.logs / f"{name}.log"
        env = dict(self.env)
        if key:
            env["BMOE_PRIVATE_KEY"] = key  # the child reads it from its environment; it is never on a command line
        with self._spawning, open(log, "ab") as out:
            if self._closing:
                raise NetworkError(f"not starting {name}: the network is shutting down")
            popen = subprocess.Popen(
                [str(a) for a in args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # its own process group: Ctrl-C in the terminal reaches this orchestrator only, which then stops
                # the children in order instead of all of them dying at once mid-transaction
                start_new_session=True,
            )  # fmt: skip
            process = Process(name, popen, log, key)
            self.processes.append(process)
        return process

    def _await_ready(self, process: Process, ready: Path, timeout: float, what: str) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(process, f"{what} {process.name}")
            try:
                process.info = json.loads(ready.read_text())
                return process
            except (FileNotFoundError, ValueError):
                time.sleep(0.2)
        self.stop(process)
        raise NetworkError(f"{what} {process.name} was not ready within {timeout:.0f}s; the end of {process.log}:\n{process.log_tail()}")

    def _check_alive(self, process: Process, what: str) -> None:
        if not process.alive():
            self.processes.remove(process)
            raise NetworkError(
                f"{what} exited with code {process.popen.returncode}; the end of {process.log}:\n{process.log_tail()}"
            )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
