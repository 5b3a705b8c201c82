"""`bmoe edge`: run an edge node that hosts experts of one model."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .options import CommandError, amount, chain_options, connect, ipfs_option, key_options, positive, private_key

log = logging.getLogger("bmoe.edge")

_DESCRIPTION = """\
Run an edge node: stake (up to the model's minNodeStake, or --stake), register as host of --experts at
this node's URL, download every expert's weights from IPFS by the CID recorded on chain and verify
them (CID, Merkle root, layers), load them on CUDA when present, and serve the HTTP API of
docs/protocol.md 8 (POST /v1/forward with binary frames, GET /v1/health).

Every answered request is stored in SQLite under --state-dir before its response is sent. Requests
are grouped per (task, expert) into windows, closed after --window-seconds or at --window-tokens
tokens; each window's bundle is pinned to IPFS and its Merkle root committed to the ResultLedger.
After the challenge window the node finalizes its commitments and claims its payment, and it answers
fraud-proof challenges against it automatically. Restarted with the same --state-dir, it resumes every
duty. SIGTERM or Ctrl-C stops it cleanly.

Attack modes (experiments only, off by default) bend the outputs of a fraction of the tokens; the
node still signs, stores and commits what it returned, so the fraud is provable on chain:
  gaussian   add Gaussian noise, std = strength x scale
  signflip   negate the outputs (times strength)
  scale      multiply the outputs by 1 + strength
  random     replace the outputs by uniform noise of amplitude 4 x strength x scale
  targeted   add strength x scale x sqrt(dim) along one fixed direction (drawn from --attack-seed)
scale is 32 for int8 outputs and the outputs' standard deviation for float ones; each token is
manipulated with probability --attack-fraction.

The key is read from the environment variable --key-env (default BMOE_PRIVATE_KEY) or from an
encrypted --keystore (password from BMOE_KEYSTORE_PASSWORD or a prompt); it is never printed."""


def _experts(text: str) -> tuple[int, ...]:
    try:
        experts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--experts takes comma-separated expert indices, not {text!r}") from None
    if not experts or min(experts) < 0 or len(set(experts)) != len(experts):
        raise argparse.ArgumentTypeError(f"--experts takes distinct non-negative indices, not {text!r}")
    return experts



def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], not {text}")
    return value


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    from bmoe_py.edge.attacks import ATTACK_MODES

    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=int, required=True, metavar="MODEL_ID", help="the model whose experts to host")
    parser.add_argument("--experts", type=_experts, required=True, metavar="LIST", help="expert indices, e.g. 0,1,2")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--public-url", metavar="URL", help="endpoint registered on chain (default: http://HOST:PORT)")
    parser.add_argument("--state-dir", type=Path, default=Path("edge-state"), metavar="DIR",
                        help="where the node keeps its SQLite database (default: %(default)s)")  # fmt: skip
    parser.add_argument("--stake", type=amount, metavar="AMOUNT",
                        help="stake to hold, e.g. 2ether (default and minimum: the model's minNodeStake)")  # fmt: skip
    parser.add_argument("--window-seconds", type=positive(float), default=10.0, metavar="S",
                        help="close a window this long after its first request (default: %(default)s)")  # fmt: skip
    parser.add_argument("--window-tokens", type=positive(int), default=8192, metavar="N",
                        help="or once it holds this many tokens (default: %(default)s)")  # fmt: skip
    parser.add_argument("--attack", choices=ATTACK_MODES, default="none",
                        help="manipulate outputs, for experiments only (default: none)")  # fmt: skip
    parser.add_argument("--attack-strength", type=float, default=1.0, metavar="X", help="see above (default: 1.0)")
    parser.add_argument("--attack-fraction", type=_fraction, default=1.0, metavar="F",
                        help="probability that a token is manipulated (default: 1.0)")  # fmt: skip
    parser.add_argument("--attack-seed", type=int, default=0, help="seed of the attack's randomness (default: 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the experts run; auto: CUDA when present (default)")  # fmt: skip
    parser.add_argument("--ready-file", type=Path, metavar="PATH",
                        help='write {"url", "node", "pid"} as JSON here once serving')  # fmt: skip
    chain_options(parser)
    key_options(parser, "the node's")
    ipfs_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bmoe_py.chain.client import ChainError
    from bmoe_py.chain.manifest import ManifestError
    from bmoe_py.edge import AttackConfig, EdgeConfig, EdgeNode, NodeSetupError
    from bmoe_py.publisher.errors import NotPublished, WeightsMismatch
    from bmoe_py.storage.client import IpfsClient
    from bmoe_py.storage.errors import IpfsError

    try:
        attack = AttackConfig(args.attack, args.attack_strength, args.attack_fraction, args.attack_seed)
        config = EdgeConfig(
            model_id=args.model, experts=args.experts, state_dir=args.state_dir, host=args.host, port=args.port,
            public_url=args.public_url, stake=args.stake, window_seconds=args.window_seconds,
            window_tokens=args.window_tokens, attack=attack, device=args.device, ready_file=args.ready_file,
        )  # fmt: skip
        key = private_key(args)
        chain = connect(args, key)
        with IpfsClient(args.ipfs, timeout=60) as ipfs:
            node = EdgeNode(config, chain, ipfs, key)
            asyncio.run(_serve(node))
    except (CommandError, ValueError, ChainError, ManifestError, NodeSetupError, IpfsError, WeightsMismatch,
            NotPublished) as exc:  # fmt: skip
        print(f"bmoe edge: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(node) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await node.run(stop)
