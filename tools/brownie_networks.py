"""Declares B-MoE's brownie networks in ~/.brownie/network-config.yaml (idempotent; run by `make setup`).

brownie reads network definitions only from that file (a `networks:` entry in brownie-config.yaml may tune
settings but cannot declare a network). This adds or updates, in a "B-MoE" group of live networks:

  bmoe-local    the local anvil that `make deploy` starts (http://127.0.0.1:8545, chain 31337)
  bmoe-sepolia  Sepolia through any RPC provider: host ${SEPOLIA_RPC_URL}
  bmoe-holesky  Holesky through ${HOLESKY_RPC_URL}
  bmoe-hoodi    Hoodi (Holesky's successor) through ${HOODI_RPC_URL}

brownie's own `sepolia` (Infura, needs $WEB3_INFURA_PROJECT_ID) is left as it is. brownie expands the variable in
`host` when it connects and stops with "Unable to expand environment variable" if it is unset.

    python tools/brownie_networks.py                       # install / update the networks above
    python tools/brownie_networks.py --add ID --host URL --chainid N [--name NAME]
    python tools/brownie_networks.py --remove ID
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

GROUP = "B-MoE"
NETWORKS: list[dict[str, Any]] = [
    {"name": "Local anvil (make deploy)", "id": "bmoe-local", "chainid": 31337, "host": "http://127.0.0.1:8545"},
    {
        "name": "Sepolia (SEPOLIA_RPC_URL)",
        "id": "bmoe-sepolia",
        "chainid": 11155111,
        "host": "${SEPOLIA_RPC_URL}",
        "explorer": "https://api-sepolia.etherscan.io/api",
    },
    {
        "name": "Holesky (HOLESKY_RPC_URL)",
        "id": "bmoe-holesky",
        "chainid": 17000,
        "host": "${HOLESKY_RPC_URL}",
        "explorer": "https://api-holesky.etherscan.io/api",
    },
    {
        "name": "Hoodi (HOODI_RPC_URL)",
        "id": "bmoe-hoodi",
        "chainid": 560048,
        "host": "${HOODI_RPC_URL}",
    },
]


def config_path() -> Path:
    path = Path.home() / ".brownie" / "network-config.yaml"
    if not path.exists():
        import brownie  # noqa: F401  (its first import writes the default network config)
    return path


@contextlib.contextmanager
def _locked_config(path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Read-modify-write of the config under an exclusive lock, replaced atomically: other brownie processes
    reading the file at the same moment see either the old or the new version, never half of one."""
    path = path or config_path()
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = yaml.safe_load(path.read_text()) or {}
        config.setdefault("live", [])
        config.setdefault("development", [])
        yield config
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".network-config.", suffix=".yaml")
        try:
            with os.fdopen(fd, "w") as fp:
                yaml.safe_dump(config, fp, sort_keys=False, default_flow_style=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _where(config: dict[str, Any], network_id: str) -> str | None:
    """The group (or "development") that declares `network_id`, if any."""
    if any(n.get("id") == network_id for n in config["development"]):
        return "development"
    for group in config["live"]:
        if any(n.get("id") == network_id for n in group.get("networks", [])):
            return group["name"]
    return None


def upsert_live_network(network: dict[str, Any], path: Path | None = None) -> str:
    """Adds `network` to the B-MoE group, or updates it there. Returns "added", "updated" or "unchanged".
    Refuses to shadow a network of the same id declared outside the group (brownie rejects duplicate ids)."""
    with _locked_config(path) as config:
        owner = _where(config, network["id"])
        if owner not in (None, GROUP):
            raise ValueError(f"network {network['id']!r} is already declared in group {owner!r}")
        group = next((g for g in config["live"] if g.get("name") == GROUP), None)
        if group is None:
            group = {"name": GROUP, "networks": []}
            config["live"].append(group)
        for i, existing in enumerate(group["networks"]):
            if existing.get("id") == network["id"]:
                if existing == network:
                    return "unchanged"
                group["networks"][i] = dict(network)
                return "updated"
        group["networks"].append(dict(network))
        return "added"


def remove_network(network_id: str, path: Path | None = None) -> bool:
    """Removes a network of the B-MoE group; returns whether it was there."""
    with _locked_config(path) as config:
        for group in config["live"]:
            if group.get("name") != GROUP:
                continue
            before = len(group["networks"])
            group["networks"] = [n for n in group["networks"] if n.get("id") != network_id]
            removed = len(group["networks"]) != before
            if not group["networks"]:
                config["live"].remove(group)
            return removed
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--add", metavar="ID", help="declare (or update) one live network")
    parser.add_argument("--host", help="RPC URL of --add (may contain ${VAR})")
    parser.add_argument("--chainid", type=int, help="chain id of --add")
    parser.add_argument("--name", help="display name of --add")
    parser.add_argument("--remove", metavar="ID", help="remove a network of the B-MoE group")
    args = parser.parse_args(argv)
    try:
        if args.remove:
            print(f"{args.remove}: {'removed' if remove_network(args.remove) else 'not declared'}")
            return 0
        if args.add:
            if not args.host or args.chainid is None:
                parser.error("--add needs --host and --chainid")
            networks = [{"name": args.name or args.add, "id": args.add, "chainid": args.chainid, "host": args.host}]
        else:
            networks = NETWORKS
        for network in networks:
            print(f"brownie network {network['id']}: {upsert_live_network(network)} ({network['host']})")
    except ValueError as exc:
        print(f"brownie_networks: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
