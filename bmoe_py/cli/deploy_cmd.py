"""`bmoe deploy`: shows the deployment manifest of the chain behind an RPC URL and checks it is still live.

Deploying itself is a brownie script (`make deploy`, `brownie run deploy --network X`); this command is for the
machines that only use a deployment: which contracts, where, with which parameters, and whether they are there."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from web3 import Web3

from bmoe_py.chain.client import default_rpc_url
from bmoe_py.chain.manifest import ManifestError, deployment_gone, load_manifest, manifest_path

_DESCRIPTION = """\
Show the deployment manifest (deployments/<chain-id>.json) of the chain at --rpc and check that
its contracts are still there. Exit status 0: live; 1: no manifest, or the chain no longer has
the deployment (e.g. a restarted anvil: run `make deploy` again)."""


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rpc", default=default_rpc_url(), metavar="URL", help="JSON-RPC URL (default: $BMOE_RPC_URL or %(default)s)")
    parser.add_argument(
        "--deployments", type=Path, metavar="DIR", help="manifest folder (default: $BMOE_DEPLOYMENTS_DIR or deployments/)"
    )
    parser.add_argument("--json", action="store_true", help="print the manifest without ABIs, as JSON")
    parser.set_defaults(func=show)


def show(args: argparse.Namespace) -> int:
    w3 = Web3(Web3.HTTPProvider(args.rpc, request_kwargs={"timeout": 10}))
    try:
        chain_id = w3.eth.chain_id
    except Exception as exc:  # connection errors of requests and web3 share no useful base class
        print(f"bmoe deploy: no Ethereum node answers at {args.rpc} ({type(exc).__name__})", file=sys.stderr)
        return 1
    try:
        manifest = load_manifest(chain_id, args.deployments)
    except ManifestError as exc:
        print(f"bmoe deploy: {exc}", file=sys.stderr)
        return 1
    gone = deployment_gone(manifest, w3)

    if args.json:
        data = manifest.to_dict()
        for record in data["contracts"].values():
            record.pop("abi")
        data["live"] = gone is None
        print(json.dumps(data, indent=2))
    else:
        commit = (manifest.git_commit or "unknown")[:12] + (" (uncommitted changes)" if manifest.git_dirty else "")
        print(f"chain {manifest.chain_id} ({manifest.network}): {manifest_path(chain_id, args.deployments)}")
        print(f"deployed {manifest.timestamp} in block {manifest.deploy_block} by {manifest.deployer}, commit {commit}")
        for name, record in manifest.contracts.items():
            print(f"  {name:<17} {record.address}")
        print("parameters: " + ", ".join(f"{k}={v}" for k, v in manifest.parameters.items()))
        print("status: live" if gone is None else f"status: STALE, {gone}; redeploy (`make deploy` locally)")
    return 0 if gone is None else 1
