"""`brownie run deploy [--network X]` or `python scripts/deploy.py [--network X]`: deploys and wires the suite and writes deployments/<chain-id>.json.

Environment (docs/deploy.md has the details):
  BMOE_DEPLOYER_KEY        private key of the deployer (hex); or
  BMOE_DEPLOYER_ACCOUNT    name of a brownie keystore account (`brownie accounts new <name>`), password from
                           BMOE_DEPLOYER_PASSWORD or a prompt
  BMOE_CONFIRMATIONS       confirmations to wait for per transaction (default 1 on local chains, 2 elsewhere)
  BMOE_DEPLOYMENTS_DIR     where manifests go (default deployments/)
  BMOE_REDEPLOY=1          replace a manifest whose deployment is still alive (the old one is kept as
                           <chain-id>.<deploy-block>.json)
  BMOE_<PARAMETER>         constructor parameters, see bmoe_py.chain.deploy.DeployParams (e.g. BMOE_FRAUD_BOND=0.05ether)
Without a key or keystore account the deployer is brownie's accounts[0] on the development network and the node's
first unlocked account on `bmoe-local` (anvil's well-known dev account); elsewhere the script refuses to start.

`python scripts/deploy.py` does the same as `brownie run deploy` and also works in a checkout whose path has a
dot in a folder name, which `brownie run` cannot import scripts from (see bmoe_py/chain/scripts.py).
"""
from __future__ import annotations

import json
import os
import sys

from brownie import accounts, network, web3

from bmoe_py.chain.deploy import DeployParams, build_manifest, deploy_suite
from bmoe_py.chain.manifest import (
    Manifest,
    ManifestError,
    deployment_gone,
    deployments_dir,
    manifest_path,
    save_manifest,
)

# Live-type networks that are a local anvil with automine: one confirmation, and anvil's unlocked dev account
# may deploy when no key is given. `bmoe-local` is make deploy's (port 8545); LocalNetwork declares
# `bmoe-local-<port>` for a chain on another port (several local networks side by side).
LOCAL_NETWORK_PREFIX = "bmoe-local"


def _is_local_network(net: str) -> bool:
    return net == LOCAL_NETWORK_PREFIX or net.startswith(LOCAL_NETWORK_PREFIX + "-")


class DeployError(Exception):
    pass


def main() -> dict:
    """Returns {contract name: brownie Contract} (used by tests that run this script on the test chain)."""
    try:
        return deploy()
    except (DeployError, ManifestError, ValueError) as exc:
        # A clear one-line error and a non-zero exit (`brownie run` prints a traceback for an exception but lets
        # SystemExit through).
        print(f"deploy: error: {exc}", file=sys.stderr)
        sys.exit(1)


def deploy() -> dict:
    net = network.show_active()
    is_local = _is_local_network(net) or _is_development()
    params = DeployParams.from_env()
    confirmations = _confirmations(is_local)
    chain_id = web3.eth.chain_id
    directory = deployments_dir()
    path = manifest_path(chain_id, directory)
    print(f"deploying B-MoE to network {net!r} (chain {chain_id}); manifest {path}")

    _check_existing_manifest(chain_id, directory)
    deployer = _deployer(net)
    balance = web3.eth.get_balance(deployer.address)
    print(f"deployer {deployer.address}, balance {balance / 1e18:.6f} ETH, {confirmations} confirmation(s) per tx")
    if balance == 0:
        raise DeployError(f"the deployer {deployer.address} has no ETH on chain {chain_id}: fund it first")
    print("parameters: " + ", ".join(f"{k}={v}" for k, v in params.to_dict().items()))

    deployed = deploy_suite(deployer, params, confirmations=confirmations)
    manifest = build_manifest(
        deployed,
        chain_id=chain_id,
        network=net,
        deployer=deployer.address,
        params=params,
        confirmations=confirmations,
        block_hash=lambda n: "0x" + bytes(web3.eth.get_block(n)["hash"]).hex(),
    )
    written = save_manifest(manifest, directory)
    print(f"wrote {written}")
    if _is_development():
        print("(development network: this chain, and so this deployment, ends with this brownie process; "
              "`make deploy` keeps one on a long-lived local chain)")
    for name, record in manifest.contracts.items():
        print(f"  {name:<17} {record.address}")
    return deployed


def _is_development() -> bool:
    from brownie._config import CONFIG

    return CONFIG.network_type == "development"


def _confirmations(is_local: bool) -> int:
    raw = os.environ.get("BMOE_CONFIRMATIONS", "")
    if not raw:
        # A local anvil mines only when it receives a transaction, so waiting for a second block would hang.
        return 1 if is_local else 2
    if not raw.isdigit() or int(raw) < 1:
        raise DeployError(f"BMOE_CONFIRMATIONS must be a whole number >= 1, got {raw!r}")
    return int(raw)


def _check_existing_manifest(chain_id: int, directory) -> None:
    """Refuses to replace the manifest of a deployment that still lives on this chain (unless BMOE_REDEPLOY=1)."""
    path = manifest_path(chain_id, directory)
    if not path.exists():
        return
    try:
        old = Manifest.from_dict(json.loads(path.read_text()))
    except (ValueError, ManifestError) as exc:
        raise DeployError(f"{path} exists but cannot be read ({exc}); move it away to deploy") from None
    gone = deployment_gone(old, web3)
    if gone:
        print(f"replacing {path}: its deployment is gone ({gone})")
        return
    if os.environ.get("BMOE_REDEPLOY") == "1":
        backup = path.with_name(f"{chain_id}.{old.deploy_block}.json")
        os.replace(path, backup)
        print(f"BMOE_REDEPLOY=1: the live deployment's manifest was moved to {backup}")
        return
    raise DeployError(
        f"{path} describes a deployment that is still live on chain {chain_id} "
        f"(Staking at {old.address('Staking')}, deployed in block {old.deploy_block}); nothing was deployed. "
        "Use that deployment, or set BMOE_REDEPLOY=1 to deploy a new one and keep the old manifest aside"
    )


def _deployer(net: str):
    key = os.environ.get("BMOE_DEPLOYER_KEY", "").strip()
    keystore = os.environ.get("BMOE_DEPLOYER_ACCOUNT", "").strip()
    if key and keystore:
        raise DeployError("set either BMOE_DEPLOYER_KEY or BMOE_DEPLOYER_ACCOUNT, not both")
    if key:
        try:
            return accounts.add(key)
        except Exception as exc:  # eth_account raises several unrelated types for a bad key
            raise DeployError(f"BMOE_DEPLOYER_KEY is not a valid private key ({type(exc).__name__})") from None
    if keystore:
        password = os.environ.get("BMOE_DEPLOYER_PASSWORD") or None
        try:
            return accounts.load(keystore, password=password)
        except FileNotFoundError:
            raise DeployError(
                f"no brownie keystore account {keystore!r}: create it with `brownie accounts new {keystore}`"
            ) from None
    if _is_development() and len(accounts) > 0:
        return accounts[0]
    if _is_local_network(net) and len(accounts) > 0:
        print(f"no BMOE_DEPLOYER_KEY: using the node's unlocked account {accounts[0].address} (anvil dev account)")
        return accounts[0]
    raise DeployError(
        f"no deployer account for network {net!r}: set BMOE_DEPLOYER_KEY to a private key, or "
        "BMOE_DEPLOYER_ACCOUNT to a brownie keystore account (`brownie accounts new <name>`)"
    )


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    from bmoe_py.chain.scripts import connect

    parser = argparse.ArgumentParser(description="Deploy the B-MoE contract suite and write deployments/<chain-id>.json.")
    parser.add_argument("--network", default="development", help="brownie network id (default: %(default)s)")
    connect(parser.parse_args().network, Path(__file__).resolve().parent.parent)
    main()
