"""`bmoe`: one command per role and chore. Each sub-command lives in its own module of this package
and exposes `register(subparsers)`; the module's handler is stored as the parser's `func` default."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# module name -> one line of help; modules are imported lazily so `bmoe --help` stays fast.
COMMANDS: dict[str, str] = {
    "ipfs": "run the embedded IPFS node (Kubo engine) and talk to IPFS nodes",
    "model": "train, quantise, publish and inspect models",
    "deploy": "show the deployment manifest of a chain",
    "edge": "run an edge node: host experts, serve forward calls, commit, get paid, answer disputes",
    "infer": "classify a data set with a published model whose experts run on edge nodes",
    "train": "train a published Float model across the edge nodes that host its experts",
    "validator": "watch a model's commitments, re-execute samples and carry disputes to their end",
    "experiment": "run the report's experiments on a local network (results/report.md)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bmoe", description="B-MoE: accountable Mixture-of-Experts on edge nodes")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"bmoe_py.cli.{name}_cmd")
        module.register(sub, name, summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
