"""The long-lived local chain behind `make deploy` and the demo: an anvil on 127.0.0.1:<port> (default 8545).

    python tools/local_chain.py --ensure [--port 8545] [--block-time N]   start anvil unless something answers
    python tools/local_chain.py --stop [--port 8545]                      stop the anvil this tool started
    python tools/local_chain.py --status [--port 8545]

anvil runs detached (its own session, so it outlives `make`), logs to .bmoe/anvil-<port>.log and records its
pid in .bmoe/anvil-<port>.pid; --stop only ever signals that recorded process group. It uses anvil's defaults
(chain id 31337, EIP-1559 base fee starting at 1 gwei, the well-known dev accounts) so that it behaves like a
public chain; brownie's live-network gas settings (`gas_price: auto`) pay the base fee.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".bmoe"


def rpc_chain_id(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> int | None:
    """The chain id of the JSON-RPC server on the port, or None if nothing answers JSON-RPC there."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(
        f"http://{host}:{port}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.loads(response.read())["result"], 16)
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


def anvil_binary() -> str:
    """anvil from node_modules (the npm wrapper forwards signals to the native binary), else from PATH."""
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise SystemExit("local_chain: anvil not found: run `make setup` (npm ci installs @foundry-rs/anvil)")
    return found


def _pid_file(port: int) -> Path:
    return STATE_DIR / f"anvil-{port}.pid"


def ensure(port: int, block_time: int | None = None, timeout: float = 30.0) -> int:
    chain_id = rpc_chain_id(port)
    if chain_id is not None:
        print(f"local_chain: chain {chain_id} already answers on port {port}")
        return 0
    STATE_DIR.mkdir(exist_ok=True)
    log_path = STATE_DIR / f"anvil-{port}.log"
    cmd = [anvil_binary(), "--host", "127.0.0.1", "--port", str(port)]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    _pid_file(port).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chain_id = rpc_chain_id(port)
        if chain_id is not None:
            print(f"local_chain: started anvil (pid {process.pid}, chain {chain_id}) on port {port}, log {log_path}")
            forget_brownie_deployments(chain_id)
            return 0
        if process.poll() is not None:
            break
        time.sleep(0.2)
    _stop_pid(process.pid)
    _pid_file(port).unlink(missing_ok=True)
    tail = log_path.read_text(errors="replace")[-2000:]
    print(f"local_chain: anvil did not answer on port {port}; the end of {log_path}:\n{tail}", file=sys.stderr)
    return 1


def forget_brownie_deployments(chain_id: int) -> None:
    """A fresh chain has no contracts, so brownie's records of earlier deployments on this chain id
    (build/deployments/<chain-id>/) are stale, and brownie refuses to connect to the network while they exist
    (ContractNotFound). Drop them."""
    folder = ROOT / "build" / "deployments"
    stale = folder / str(chain_id)
    if stale.is_dir():
        shutil.rmtree(stale)
        print(f"local_chain: removed brownie's stale records of chain {chain_id} ({stale})")
    map_path = folder / "map.json"
    if map_path.exists():
        deployment_map = json.loads(map_path.read_text() or "{}")
        if deployment_map.pop(str(chain_id), None) is not None:
            map_path.write_text(json.dumps(deployment_map, indent=2, sort_keys=True))


def stop(port: int, timeout: float = 10.0) -> int:
    pid_file = _pid_file(port)
    if not pid_file.exists():
        print(f"local_chain: no anvil started by this tool on port {port}")
        return 0
    pid = int(pid_file.read_text().strip())
    _stop_pid(pid, timeout)
    pid_file.unlink(missing_ok=True)
    print(f"local_chain: stopped anvil (pid {pid}) on port {port}")
    return 0


def _stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM to the process group this tool created (the npm wrapper and anvil), then SIGKILL if it lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (when this process started it, it is reaped here)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent (or init) reaps it
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="start or stop the local anvil chain")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--ensure", action="store_true", help="start anvil unless a chain answers on the port")
    action.add_argument("--stop", action="store_true", help="stop the anvil started by --ensure")
    action.add_argument("--status", action="store_true", help="print the chain id answering on the port")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BMOE_CHAIN_PORT", "8545")))
    parser.add_argument("--block-time", type=int, help="mine every N seconds instead of on each transaction")
    args = parser.parse_args(argv)
    if args.ensure:
        return ensure(args.port, args.block_time)
    if args.stop:
        return stop(args.port)
    chain_id = rpc_chain_id(args.port)
    print(f"port {args.port}: " + (f"chain {chain_id}" if chain_id is not None else "nothing answers"))
    return 0 if chain_id is not None else 1


if __name__ == "__main__":
    sys.exit(main())
