"""`bmoe train`: train a published Float model across the edge nodes that host its experts (docs/protocol.md 11)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .options import CommandError, amount, chain_options, connect, ipfs_option, key_options, positive, private_key

_DESCRIPTION = """\
Train a published Float model (`bmoe model publish --float`) across its edge nodes, as its owner:
this process runs the gate, the embeddings, the norms, the head, the loss and their optimiser; the
forward and backward passes of every expert run on the edge node named its trainer on chain
(ExpertRegistry.setTrainer), over HTTP. Each expert gets one trainer among its active hosts (the
experts spread over as many nodes as there are; --trainer restricts the choice); the other hosts are
spares. A round is --steps batches; at its end every trainer pins its checkpoint to IPFS, registers
it as the expert's next version and commits the round's steps to a ResultLedger task (paid like
inference, at --price per token from --escrow), and this process registers the new gate bundle and
reports the test accuracy and expert load of exactly the registered files.

--mode verified adds, after every round, the screening of the trainers against their peers (loss,
gradient and update norms, output scale: robust z-scores and 2-means; flags recorded in the
Screening contract, so validators check every step of a flagged trainer), and the consequences of a
lost dispute: a trainer slashed since the start is blacklisted on chain, its experts are rolled back
to their last good version and handed to another host. Validators (`bmoe validator`) do the
checking; without them, verified mode still screens and records flags."""


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=int, required=True, metavar="MODEL_ID", help="the published Float model's id")
    parser.add_argument("--dataset", choices=("mnist1d", "digits"), required=True, help="local data set to train on")
    parser.add_argument("--rounds", type=positive(int), default=3, help="training rounds (default: %(default)s)")
    parser.add_argument("--steps", type=positive(int), default=10, help="batches per round (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive(int), default=64, help="samples per batch (default: %(default)s)")
    parser.add_argument(
        "--lr", type=positive(float), default=1e-2,
        help="learning rate of the experts' Adam, sent with every backward call (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--local-lr", type=positive(float), default=None, metavar="LR",
        help="learning rate of the gate, embeddings, norms and head (default: --lr)",
    )  # fmt: skip
    parser.add_argument(
        "--mode", choices=("traditional", "verified"), default="verified",
        help="verified: screen trainers and drop slashed ones; traditional: trust them (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--trainer", action="append", default=None, metavar="ADDRESS",
        help="choose trainers among these hosts only (repeat the option; default: every active host)",
    )  # fmt: skip
    parser.add_argument(
        "--eval-samples", type=positive(int), default=None, metavar="N",
        help="test samples per evaluation (default: the whole test split)",
    )  # fmt: skip
    parser.add_argument("--price", type=amount, default="1gwei", metavar="AMOUNT", help="price per trained token (default: %(default)s)")
    parser.add_argument("--escrow", type=amount, default="0.1ether", metavar="AMOUNT", help="escrow of the training task (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batches (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the rounds as JSON at the end")
    chain_options(parser)
    key_options(parser, "the model owner's")
    ipfs_option(parser)
    parser.set_defaults(func=_train)


def _fail(exc: BaseException) -> int:
    print(f"bmoe train: error: {exc}", file=sys.stderr)
    return 1


def _user_errors() -> tuple[type[BaseException], ...]:
    from bmoe_py.chain.client import ChainError
    from bmoe_py.chain.manifest import ManifestError
    from bmoe_py.publisher.errors import NotPublished, WeightsMismatch
    from bmoe_py.storage.errors import IpfsError
    from bmoe_py.training.client import TrainerError

    return (CommandError, ChainError, ManifestError, IpfsError, WeightsMismatch, NotPublished, TrainerError)


def _train(args: argparse.Namespace) -> int:
    from bmoe_py.chain.client import TransactionReverted

    try:
        key = private_key(args)
        chain = connect(args, key)  # before loading torch and data: a wrong chain should fail at once
        from bmoe_py.publisher.records import Mode, read_model

        try:
            model = read_model(chain, args.model, hosts=False)
        except TransactionReverted as exc:
            if exc.name == "UnknownModel":
                raise CommandError(f"chain {chain.chain_id} has no model {args.model}") from None
            raise
        if model.mode is not Mode.FLOAT:
            raise CommandError(f"model {args.model} is {model.mode.label}: only Float models can be trained "
                               "(publish one with `bmoe model publish --float`)")  # fmt: skip
        if model.owner.lower() != chain.address.lower():
            raise CommandError(f"model {args.model} belongs to {model.owner}, not to this key's {chain.address}: "
                               "only the owner names trainers and registers the gate")  # fmt: skip
        return _run(args, chain, len(model.experts))
    except _user_errors() as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        # finished rounds stay registered; the trainers abandon the open one when the next round starts
        print("\nbmoe train: interrupted; every finished round is registered on chain", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, chain: Any, num_experts: int) -> int:
    import torch

    from bmoe_py.chain.screening import screening_record
    from bmoe_py.model.data import load_dataset
    from bmoe_py.storage.client import IpfsClient
    from bmoe_py.training.client import TrainerClient
    from bmoe_py.training.coordinator import TrainingConfig, TrainingSession, choose_trainers

    torch.set_num_threads(1)  # the local part is small; the cores are the trainers' when they share the machine
    data = load_dataset(args.dataset)
    candidates = set(args.trainer or [])
    exclude = []
    if args.mode == "verified":  # a blacklisted node cannot train; say so by leaving it out, not by failing
        registry_hosts = {a for e in range(num_experts) for a in chain.call(chain.registry.functions.hosts(args.model, e))}
        exclude = [a for a in registry_hosts if screening_record(chain, args.model, a).blacklisted]
    try:
        trainers, spares = choose_trainers(chain, args.model, num_experts, only=sorted(candidates) or None, exclude=exclude)
    except ValueError as exc:
        raise CommandError(f"{exc} (start `bmoe edge --model {args.model}` nodes that host them)") from None
    for trainer in {t.address: t for t in [*trainers.values(), *spares]}.values():
        health = TrainerClient(trainer.url, trainer.address).health()  # TrainerError names the node's URL
        if str(health.get("node", trainer.address)).lower() != trainer.address.lower():
            raise CommandError(f"{trainer.url} answers as {health.get('node')}, not as the registered host {trainer.address}")
    for e, trainer in trainers.items():
        print(f"expert {e}: trainer {trainer.address} at {trainer.url}", flush=True)
    if exclude:
        print(f"left out (blacklisted for model {args.model}): {', '.join(exclude)}", flush=True)

    config = TrainingConfig(
        rounds=args.rounds, steps_per_round=args.steps, batch_size=args.batch_size, expert_lr=args.lr,
        local_lr=args.local_lr or args.lr, mode=args.mode, price_per_token=args.price, escrow=args.escrow,
        eval_samples=args.eval_samples, seed=args.seed,
    )  # fmt: skip
    with IpfsClient(args.ipfs) as ipfs:
        try:
            session = TrainingSession(chain, ipfs, args.model, trainers, data, config, spares=spares)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            accuracy, _ = session.evaluate()
            print(f"training task {session.task_id}; before training: test accuracy {accuracy:.3f}", flush=True)
            rounds = []
            for result in session.run():
                rounds.append(result.to_dict())
                print(_round_line(result), flush=True)
        finally:
            session.close()
    if args.json:
        print(json.dumps({
            "model_id": args.model, "task_id": session.task_id, "mode": args.mode, "initial_accuracy": accuracy,
            "trainers": {str(e): t.address for e, t in trainers.items()}, "rounds": rounds,
        }, indent=2))  # fmt: skip
    return 0


def _round_line(result: Any) -> str:
    versions = ", ".join(f"{e}:v{v}" for e, v in sorted(result.versions.items()))
    line = (f"round {result.round}: loss {result.train_loss:.3f}, test accuracy {result.accuracy:.3f}, "
            f"expert load max/mean {result.imbalance_max_mean:.2f}, versions {versions} ({result.seconds:.1f} s)")  # fmt: skip
    for flag in result.flags:
        line += f"\n  flagged {flag.node} (expert {flag.expert}): {flag.reason}, score {flag.score:.1f}"
    for node in result.dropped:
        line += f"\n  dropped {node}: slashed, blacklisted"
    for e, v in sorted(result.rolled_back.items()):
        line += f"\n  expert {e} rolled back to its last good weights (re-published as version {v}), handed to another host"
    return line
