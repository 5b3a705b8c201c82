"""`bmoe infer`: classify a local data set with a published model whose experts run on the network's edge nodes."""
from __future__ import annotations

import argparse
import json
import sys

from .options import CommandError, amount, chain_options, connect, ipfs_option, key_options, positive, private_key

_DESCRIPTION = """\
Run inference with a published exact-int8 model: the gate runs here, every expert call goes to the
edge nodes that the ExpertRegistry lists as active hosts of that expert, and every answer is checked
(signed receipt, Merkle root of the outputs) before it is used.

Results are paid from a task on the ResultLedger: a new one funded with --escrow at --price per
committed token, or the existing --task. Verification policies (--policy):
  none            one host per call; nothing beyond the receipt is checked
  redundant:R     R hosts per call; per token the majority output wins, and every outvoted host is
                  challenged on chain (its receipt posted, one wrong token proven), slashed if it lied,
                  and never called again
  optimistic:P    one host per call; validators re-execute a fraction P of the committed tokens

A host that times out or dies is replaced by another host of the same expert; if none is left the
command stops and names the expert. The report gives tokens, accuracy, calls per host, call latency,
disputes and stake slashed (--json: the same as JSON)."""


def policy(text: str):
    """argparse type: a verification policy."""
    from bmoe_py.publisher.policies import Policy, PolicyError

    try:
        return Policy.parse(text)
    except PolicyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None



def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=int, required=True, metavar="MODEL_ID", help="the published model's id")
    parser.add_argument("--dataset", choices=("mnist1d", "digits"), required=True, help="local data set (test split)")
    parser.add_argument("--samples", type=positive(int), default=512, help="test samples to classify (default: %(default)s)")
    parser.add_argument(
        "--batch-tokens", type=positive(int), default=1024, metavar="N",
        help="tokens per forward pass and at most per request to a host (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--policy", type=policy, default="none", metavar="POLICY",
        help="none, redundant:R or optimistic:P (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--price", type=amount, default="1gwei", metavar="AMOUNT", help="price per committed token (default: %(default)s)")
    parser.add_argument("--escrow", type=amount, default="0.05ether", metavar="AMOUNT", help="escrow of a new task (default: %(default)s)")
    parser.add_argument("--task", type=int, metavar="TASK_ID", help="use this open task of yours instead of creating one")
    parser.add_argument(
        "--timeout", type=positive(float), default=10.0, metavar="SECONDS",
        help="seconds a host has to answer one call (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--dispute-timeout", type=positive(float), default=120.0, metavar="SECONDS",
        help="seconds to wait for challenges of outvoted hosts to settle before reporting (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--torch-threads", type=positive(int), default=1, metavar="N",
        help="CPU threads of the local gate (default: %(default)s: the gate is small, and idle OpenMP threads spin "
        "on cores that the edge nodes of a local network need)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    chain_options(parser)
    key_options(parser, "the publisher's")
    ipfs_option(parser)
    parser.set_defaults(func=_infer)


def _fail(exc: BaseException) -> int:
    print(f"bmoe infer: error: {exc}", file=sys.stderr)
    return 1


def _user_errors() -> tuple[type[BaseException], ...]:
    from bmoe_py.chain.client import ChainError
    from bmoe_py.chain.manifest import ManifestError
    from bmoe_py.publisher.errors import NotPublished, WeightsMismatch
    from bmoe_py.publisher.hosts import ExpertUnavailable
    from bmoe_py.publisher.runtime import SessionError
    from bmoe_py.storage.errors import IpfsError

    return (CommandError, ChainError, ManifestError, IpfsError, WeightsMismatch, NotPublished, ExpertUnavailable, SessionError)


def _infer(args: argparse.Namespace) -> int:
    from bmoe_py.chain.client import TransactionReverted

    try:
        key = private_key(args)
        chain = connect(args, key)  # before loading torch and data: a wrong chain should fail at once
        import torch

        from bmoe_py.model.data import load_dataset
        from bmoe_py.publisher.runtime import InferenceSession
        from bmoe_py.storage.client import IpfsClient

        torch.set_num_threads(args.torch_threads)
        data = load_dataset(args.dataset)
        x, y = data.x_test[: args.samples], data.y_test[: args.samples]
        with IpfsClient(args.ipfs) as ipfs:
            try:
                session = InferenceSession(
                    chain, ipfs, args.model, args.policy, price_per_token=args.price, escrow=args.escrow,
                    call_timeout=args.timeout, task_id=args.task, max_request_tokens=args.batch_tokens,
                    dispute_timeout=args.dispute_timeout,
                )  # fmt: skip
            except TransactionReverted as exc:
                if exc.name == "UnknownModel":
                    raise CommandError(f"chain {chain.chain_id} has no model {args.model}") from None
                raise
            with session:
                config = session.config
                if config.input_dim != data.input_dim:
                    raise CommandError(
                        f"model {args.model} takes {config.input_dim} features, data set {args.dataset} has {data.input_dim}"
                    )
                batch = max(1, args.batch_tokens // config.num_tokens)
                report = session.run(x, y, batch_size=batch)
    except _user_errors() as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0
