"""Options and helpers that several `bmoe` commands share: where the chain, the deployment and the IPFS node are,
whose key signs, and how durations and amounts are written. Every role command (`model`, `edge`, `validator`,
`infer`) reads them the same way, so a user sets `BMOE_RPC_URL`, `BMOE_IPFS_API` and a key once."""
from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_KEY_ENV = "BMOE_PRIVATE_KEY"

__all__ = [
    "DEFAULT_KEY_ENV",
    "DEFAULT_RPC",
    "CommandError",
    "amount",
    "chain_options",
    "connect",
    "duration",
    "ipfs_option",
    "key_options",
    "positive",
    "private_key",
]


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def chain_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc",
        default=os.environ.get("BMOE_RPC_URL") or DEFAULT_RPC,
        metavar="URL",
        help="Ethereum JSON-RPC endpoint (default: $BMOE_RPC_URL or %s)" % DEFAULT_RPC,
    )
    parser.add_argument(
        "--deployments",
        type=Path,
        metavar="DIR",
        help="folder of deployment manifests <chain-id>.json (default: $BMOE_DEPLOYMENTS_DIR or deployments/)",
    )


def key_options(parser: argparse.ArgumentParser, whose: str = "the account's") -> None:
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--key-env",
        default=DEFAULT_KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding {whose} private key (default: %(default)s)",
    )
    keys.add_argument(
        "--keystore", type=Path, metavar="FILE",
        help=f"encrypted JSON keystore of {whose} key (password from BMOE_KEYSTORE_PASSWORD or a prompt)",
    )  # fmt: skip


def ipfs_option(parser: argparse.ArgumentParser) -> None:
    from bmoe_py.storage.client import DEFAULT_API

    parser.add_argument(
        "--ipfs",
        default=os.environ.get("BMOE_IPFS_API") or DEFAULT_API,
        metavar="URL",
        help="Kubo RPC API of the IPFS node (default: $BMOE_IPFS_API or %s)" % DEFAULT_API,
    )


def duration(text: str) -> int:
    """argparse type: seconds, or 30m / 12h / 2d."""
    from bmoe_py.chain.deploy import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def amount(text: str) -> int:
    """argparse type: wei, or 0.5ether / 100gwei."""
    from bmoe_py.chain.deploy import parse_amount

    try:
        return parse_amount(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive(kind: type):
    """argparse type: a positive `kind` (int or float)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def private_key(args: argparse.Namespace) -> str:
    """The key from --keystore or the --key-env variable; never echoed, never written anywhere."""
    from eth_account import Account

    if args.keystore:
        try:
            keystore = json.loads(args.keystore.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read keystore {args.keystore}: {exc}") from None
        password = os.environ.get("BMOE_KEYSTORE_PASSWORD")
        if password is None:
            password = getpass.getpass(f"password of {args.keystore}: ")
        try:
            return "0x" + bytes(Account.decrypt(keystore, password)).hex()
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"cannot decrypt keystore {args.keystore}: {exc} (wrong password?)") from None
    raw = os.environ.get(args.key_env, "").strip()
    if not raw:
        raise CommandError(f"no private key: set {args.key_env} to a private key (0x + 64 hex digits) or pass --keystore FILE")
    try:
        Account.from_key(raw)
    except (ValueError, TypeError):
        raise CommandError(f"{args.key_env} does not hold a private key (expected 0x followed by 64 hex digits)") from None
    return raw


def connect(args: argparse.Namespace, key: str | None = None):
    """A `Chain` for --rpc and --deployments, signing with `key` when given."""
    from bmoe_py.chain.client import connect as chain_connect

    return chain_connect(args.rpc, key, deployments_dir=args.deployments)
