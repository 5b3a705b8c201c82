"""Placeholder so that `bmoe` runs in this branch; the real `bmoe deploy` comes from another branch."""
from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(name, help=summary)
    parser.set_defaults(func=_not_available)


def _not_available(args: argparse.Namespace) -> int:
    print("not available yet", file=sys.stderr)
    return 2
