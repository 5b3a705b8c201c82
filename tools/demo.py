"""`make demo`: the main job of B-MoE on a local network, with real parts only.

1. a local chain: anvil on 127.0.0.1:8545 (started unless one answers), the contract suite deployed
   (`python scripts/deploy.py --network bmoe-local`, the same as `brownie run deploy`) unless the manifest's deployment is alive there;
2. an IPFS node: the embedded Kubo engine (`bmoe ipfs daemon`) with its repository in .bmoe/ipfs;
3. a model: a float MoE trained on MNIST-1D, its experts quantised to exact int8, every file pinned to IPFS,
   the model and its experts registered on chain (`bmoe model publish`);
4. the model read back from the chain with every file downloaded and checked against the CIDs and
   Merkle roots recorded there (`bmoe model show --verify`).

The IPFS node is stopped at the end; the chain keeps running (stop it with
`python tools/local_chain.py --stop`) so that the deployment and the model can be explored afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".bmoe"
PY = sys.executable
# anvil's well-known development account #1: the demo's publisher (account #0 deploys).
PUBLISHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    print("$ " + " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if check and result.returncode != 0:
        sys.exit(f"demo: step failed with exit code {result.returncode}: {' '.join(cmd)}")
    return result


def wait_for_ipfs(api: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"demo: the IPFS daemon exited with code {proc.returncode}; see {STATE / 'ipfs.log'}")
        try:
            req = urllib.request.Request(f"{api}/api/v0/version", method="POST")
            with urllib.request.urlopen(req, timeout=2) as response:
                print(f"IPFS node up: {json.loads(response.read()).get('Version')} at {api}", flush=True)
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"demo: the IPFS daemon did not answer at {api} within {timeout:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain-port", type=int, default=8545)
    parser.add_argument("--ipfs-port", type=int, default=5001)
    parser.add_argument("--dataset", choices=("mnist1d", "digits"), default="mnist1d")
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    STATE.mkdir(exist_ok=True)
    rpc = f"http://127.0.0.1:{args.chain_port}"
    api = f"http://127.0.0.1:{args.ipfs_port}"
    # brownie and anvil are found next to this interpreter and in node_modules, also when run without make.
    path = os.pathsep.join([str(Path(PY).parent), str(ROOT / "node_modules" / ".bin"), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, BMOE_RPC_URL=rpc, BMOE_IPFS_API=api, BMOE_PRIVATE_KEY=PUBLISHER_KEY, PYTHONUNBUFFERED="1")

    step("local chain (anvil)")
    run([PY, "tools/local_chain.py", "--ensure", "--port", str(args.chain_port)])

    step("contracts")
    alive = run([PY, "-m", "bmoe_py", "deploy", "--rpc", rpc], env=env, check=False).returncode == 0
    if alive:
        print("the deployment in the manifest is alive on this chain: reusing it", flush=True)
    else:
        run([PY, "scripts/deploy.py", "--network", "bmoe-local"], env=env)
        run([PY, "-m", "bmoe_py", "deploy", "--rpc", rpc], env=env)

    step("IPFS node (embedded Kubo engine)")
    log = open(STATE / "ipfs.log", "ab")
    daemon = subprocess.Popen(
        [PY, "-m", "bmoe_py", "ipfs", "daemon", "--repo", str(STATE / "ipfs"), "--api-port", str(args.ipfs_port),
         "--swarm-port", "0"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_ipfs(api, daemon)

        step(f"train, quantise and publish a model ({args.dataset})")
        out = STATE / "published.json"
        # The MNIST-1D setting of docs/accuracy.md: 8 experts, top-2, tokens of 8 features every 4.
        patch = ["--patch-size", "8", "--patch-stride", "4"] if args.dataset == "mnist1d" else ["--patch-size", "16", "--patch-stride", "8"]
        cmd = [PY, "-m", "bmoe_py", "model", "publish", "--dataset", args.dataset, "--epochs", str(args.epochs),
               "--experts", "8", *patch, "--json"]
        print("$ " + " ".join(cmd), flush=True)
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        if result.returncode != 0:
            sys.exit(f"demo: publishing failed (exit {result.returncode})")
        out.write_text(result.stdout)
        published = json.loads(result.stdout)
        model_id = published["model_id"]
        print(json.dumps({k: v for k, v in published.items() if k != "experts"}, indent=2), flush=True)

        step(f"read model {model_id} back from the chain and verify every file")
        run([PY, "-m", "bmoe_py", "model", "show", str(model_id), "--verify"], env=env)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()

    step("done")
    print(f"chain: {rpc} (still running; stop with `python tools/local_chain.py --stop`)")
    print(f"published model: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
