"""`bmoe model`: train a model, publish it (IPFS + ExpertRegistry), and read a published model back from the chain."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .options import (
    CommandError,
    amount,
    chain_options,
    connect,
    duration,
    ipfs_option,
    key_options,
    private_key,
)

log = logging.getLogger("bmoe.model")


_DESCRIPTION = """\
Models of B-MoE. `train` trains a float MoE on a local data set and saves a checkpoint; `publish` trains
(or loads a checkpoint), quantises the experts to exact int8, pins every file to IPFS and registers the
model and its experts on chain; `show` reads a model back from the chain and, with --verify, downloads
and checks every file against the CIDs and Merkle roots recorded there."""

_PUBLISH_DESCRIPTION = """\
Publish a model: train it (or load --checkpoint), quantise its experts to exact int8, add and pin the
gate bundle and one safetensors file per expert to the IPFS node at --ipfs, then register the model
(ExactInt8, with --challenge-window and the minimum stakes) and publish every expert (CID, weights
root, layer shapes) in the ExpertRegistry of the deployment recorded for the chain at --rpc.

With --float the float experts are published as they are (mode Float: results are judged by a validator
committee within --tolerance, and the model can be trained across its edge nodes with `bmoe train`).

Nothing is registered unless every file is pinned and the key's balance covers the gas. If a
transaction fails half-way, the error names the model id: run again with --resume MODEL_ID and the
same model (--checkpoint; keep one with --save-checkpoint) to publish the remaining experts.

The key is read from the environment variable --key-env (default BMOE_PRIVATE_KEY, 0x-prefixed hex)
or from an encrypted JSON --keystore (password from BMOE_KEYSTORE_PASSWORD or a prompt)."""

_SHOW_DESCRIPTION = """\
Print what the chain records about a model: owner, mode, challenge window, minimum stakes, the gate
bundle (CID and root), and for each expert its latest version (CID, weights root, layers) and hosts.
With --verify every file is downloaded from the IPFS node at --ipfs and checked against the chain;
the exit code is 1 if any file is refused."""


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    sub = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND")

    train = sub.add_parser(
        "train",
        help="train a float MoE and save a checkpoint",
        description="Train a float MoE on a local data set, report its float and exact-int8 accuracy, and save a checkpoint "
        "that `bmoe model publish --checkpoint` takes.",
    )
    _training_options(train)
    train.add_argument("--out", type=Path, required=True, metavar="PATH", help="checkpoint file to write (.safetensors)")
    train.set_defaults(func=_train)

    publish = sub.add_parser(
        "publish",
        help="train or load, quantise, pin to IPFS and register a model on chain",
        description=_PUBLISH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _training_options(publish)
    publish.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="publish this checkpoint (from `bmoe model train`) instead of training"
    )
    publish.add_argument(
        "--save-checkpoint", type=Path, metavar="PATH",
        help="also save the trained model here, before publishing (what --resume needs after a failure)",
    )  # fmt: skip
    chain_options(publish)
    key_options(publish, "the publisher's")
    ipfs_option(publish)
    publish.add_argument(
        "--challenge-window",
        type=duration,
        default="1d",
        metavar="DURATION",
        help="how long results of the model can be challenged: seconds or 30m/12h/2d (default: %(default)s)",
    )
    publish.add_argument(
        "--min-node-stake", type=amount, default="1ether", metavar="AMOUNT",
        help="stake a node needs to host an expert: wei or 0.5ether/100gwei (default: %(default)s)",
    )  # fmt: skip
    publish.add_argument(
        "--min-validator-stake", type=amount, default="0.5ether", metavar="AMOUNT",
        help="stake a validator needs to sit on a committee (default: %(default)s)",
    )  # fmt: skip
    publish.add_argument(
        "--float", action="store_true", dest="float_experts",
        help="publish the float experts as they are (mode Float, results judged within --tolerance, trainable with "
        "`bmoe train`) instead of exact int8 ones",
    )  # fmt: skip
    publish.add_argument(
        "--tolerance", type=int, default=1000, metavar="MILLIONTHS",
        help="Float models: how far a result may be from its re-execution, in millionths of the largest value "
        "(docs/protocol.md 6; default: %(default)s)",
    )  # fmt: skip
    publish.add_argument(
        "--resume", type=int, metavar="MODEL_ID", help="finish publishing a model whose publication stopped half-way"
    )
    publish.add_argument("--json", action="store_true", help="print the result as JSON")
    publish.set_defaults(func=_publish)

    show = sub.add_parser(
        "show",
        help="print a model, its experts and hosts as recorded on chain",
        description=_SHOW_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("model_id", type=int, metavar="MODEL_ID", help="the id `bmoe model publish` printed")
    chain_options(show)
    ipfs_option(show)
    show.add_argument("--verify", action="store_true", help="download every file and check it against the chain")
    show.add_argument("--json", action="store_true", help="print the result as JSON")
    show.set_defaults(func=_show)


# ------------------------------------------------------------------------------------------------ options


def _training_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (with --checkpoint only --dataset counts: it calibrates the quantisation)")
    group.add_argument("--dataset", choices=("mnist1d", "digits"), default="digits", help="data set (default: %(default)s)")
    group.add_argument("--epochs", type=int, default=10, help="training epochs (default: %(default)s)")
    group.add_argument("--experts", type=int, default=4, help="experts per MoE layer (default: %(default)s)")
    group.add_argument("--k", type=int, default=2, help="experts per token (default: %(default)s)")
    group.add_argument("--d-model", type=int, default=32, help="token width (default: %(default)s)")
    group.add_argument("--d-hidden", type=int, default=64, help="hidden width of an expert (default: %(default)s)")
    group.add_argument(
        "--patch-size", type=int, default=None, metavar="N",
        help="features per token (default: the whole sample is one token)",
    )  # fmt: skip
    group.add_argument(
        "--patch-stride", type=int, default=None, metavar="N",
        help="step between the starts of two tokens (default: the patch size, no overlap)",
    )  # fmt: skip
    group.add_argument("--samples", type=int, default=None, help="MNIST-1D samples to generate (default: the loader's)")
    group.add_argument("--seed", type=int, default=0, help="seed of initialisation and batching (default: %(default)s)")


def _fail(command: str, exc: BaseException) -> int:
    print(f"bmoe model {command}: error: {exc}", file=sys.stderr)
    return 1


# ------------------------------------------------------------------------------------------------ commands


def _user_errors() -> tuple[type[BaseException], ...]:
    from bmoe_py.chain.client import ChainError
    from bmoe_py.chain.manifest import ManifestError
    from bmoe_py.publisher.errors import NotPublished, PublishError, WeightsMismatch
    from bmoe_py.storage.errors import IpfsError

    return (CommandError, ChainError, ManifestError, PublishError, IpfsError, WeightsMismatch, NotPublished)


def _options(args: argparse.Namespace):
    from bmoe_py.publisher.prepare import TrainingOptions

    return TrainingOptions(
        dataset=args.dataset,
        epochs=args.epochs,
        experts=args.experts,
        k=args.k,
        d_model=args.d_model,
        d_hidden=args.d_hidden,
        patch_size=args.patch_size,
        patch_stride=args.patch_stride,
        samples=args.samples,
        seed=args.seed,
    )


def _train(args: argparse.Namespace) -> int:
    from bmoe_py.publisher.prepare import prepare, save_checkpoint

    try:
        prepared = prepare(_options(args))
        save_checkpoint(prepared.model, args.out)
    except _user_errors() as exc:
        return _fail("train", exc)
    print(f"checkpoint {args.out}: {prepared.summary()}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from bmoe_py.publisher.publish import PublishParams, publish_model
    from bmoe_py.storage.client import IpfsClient

    try:
        key = private_key(args)
        chain = connect(args, key)  # before training: a missing deployment should not cost minutes
        from bmoe_py.publisher.prepare import model_files, prepare, save_checkpoint  # imports torch

        prepared = prepare(_options(args), args.checkpoint)
        if args.save_checkpoint:
            save_checkpoint(prepared.model, args.save_checkpoint)
        if args.float_experts:
            from bmoe_py.publisher.prepare import float_model_files

            if args.tolerance <= 0:
                raise CommandError("--tolerance must be a positive number of millionths for a Float model")
            files = float_model_files(prepared.model)
        else:
            files = model_files(prepared.model, prepared.exact.experts)
        params = PublishParams(
            challenge_window=args.challenge_window,
            min_node_stake=args.min_node_stake,
            min_validator_stake=args.min_validator_stake,
            tolerance=args.tolerance if args.float_experts else 0,
        )
        with IpfsClient(args.ipfs) as ipfs:
            published = publish_model(chain, ipfs, files, params, resume=args.resume)
    except _user_errors() as exc:
        return _fail("publish", exc)
    if args.json:
        print(json.dumps(_published_json(published, prepared), indent=2))
    else:
        print(f"model: {prepared.summary()}")
        _print_published(published)
    return 0


def _show(args: argparse.Namespace) -> int:
    from bmoe_py.chain.client import TransactionReverted
    from bmoe_py.publisher.records import read_model
    from bmoe_py.storage.client import IpfsClient

    try:
        chain = connect(args)
        try:
            model = read_model(chain, args.model_id)
        except TransactionReverted as exc:
            if exc.name == "UnknownModel":
                raise CommandError(f"chain {chain.chain_id} has no model {args.model_id}") from None
            raise
        checks: dict[str, str] = {}
        if args.verify:
            from bmoe_py.publisher.fetch import (  # imports torch
                load_expert_from_chain,
                load_float_expert_from_chain,
                load_gate_from_chain,
            )
            from bmoe_py.publisher.records import Mode

            load = load_float_expert_from_chain if model.mode is Mode.FLOAT else load_expert_from_chain
            with IpfsClient(args.ipfs) as ipfs:
                checks["gate"] = _check(lambda: load_gate_from_chain(chain, ipfs, args.model_id))
                for expert in model.experts:
                    if expert.published:
                        checks[f"expert {expert.index}"] = _check(
                            lambda e=expert: load(chain, ipfs, args.model_id, e.index, e.version)
                        )
    except _user_errors() as exc:
        return _fail("show", exc)
    if args.json:
        print(json.dumps(_model_json(chain.chain_id, model, checks), indent=2))
    else:
        _print_model(chain.chain_id, model, checks)
    refused = [what for what, result in checks.items() if result != "ok"]
    return 1 if refused else 0


def _check(load) -> str:
    from bmoe_py.publisher.errors import WeightsMismatch

    try:
        load()
    except WeightsMismatch as exc:
        return f"REFUSED: {exc.detail}"
    return "ok"


# ------------------------------------------------------------------------------------------------ output


def _duration_text(seconds: int) -> str:
    """86400 -> `1d`, 5400 -> `90m`, 45 -> `45s`: the largest unit that divides the duration."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _eth(wei: int) -> str:
    return f"{wei / 10**18:g} ETH"


def _published_json(published, prepared) -> dict[str, Any]:
    return {
        "float_accuracy": prepared.float_accuracy,
        "exact_accuracy": prepared.exact_accuracy,
        "chain_id": published.chain_id,
        "model_id": published.model_id,
        "owner": published.owner,
        "register_tx": published.register_tx,
        "gate": {"cid": published.gate_cid, "root": "0x" + published.gate_root.hex()},
        "mode": "Float" if published.params.tolerance else "ExactInt8",
        "tolerance": published.params.tolerance,
        "challenge_window": published.params.challenge_window,
        "min_node_stake": published.params.min_node_stake,
        "min_validator_stake": published.params.min_validator_stake,
        "gas_used": published.gas_used,
        "experts": [
            {
                "index": e.index,
                "version": e.version,
                "cid": e.weights_cid,
                "root": "0x" + e.weights_root.hex(),
                "layers": [str(layer) for layer in e.layers],
                "tx": e.tx_hash,
            }
            for e in published.experts
        ],
    }


def _print_published(published) -> None:
    action = f"registered (tx {published.register_tx})" if published.register_tx else "resumed"
    print(f"model {published.model_id} on chain {published.chain_id} {action}, owner {published.owner}")
    params = published.params
    print(
        f"  {'Float (tolerance ' + str(params.tolerance) + ' millionths)' if params.tolerance else 'ExactInt8'}, challenge window {_duration_text(params.challenge_window)}, min node stake {_eth(params.min_node_stake)}, "
        f"min validator stake {_eth(params.min_validator_stake)}"
    )
    print(f"  gate  {published.gate_cid}  root 0x{published.gate_root.hex()}")
    rows = [
        (str(e.index), str(e.version), e.weights_cid, "0x" + e.weights_root.hex(), ", ".join(map(str, e.layers)), e.tx_hash or "(already on chain)")
        for e in published.experts
    ]
    _table(("expert", "version", "CID", "weights root", "layers", "tx"), rows)
    print(f"gas used: {published.gas_used}")


def _model_json(chain_id: int, model, checks: dict[str, str]) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "model_id": model.model_id,
        "owner": model.owner,
        "mode": model.mode.label,
        "expert_count": model.expert_count,
        "tolerance": model.tolerance,
        "challenge_window": model.challenge_window,
        "min_node_stake": model.min_node_stake,
        "min_validator_stake": model.min_validator_stake,
        "gate": {"cid": model.gate_cid, "root": "0x" + model.gate_root.hex(), "check": checks.get("gate")},
        "experts": [
            {
                "index": e.index,
                "version": e.version,
                "cid": e.weights_cid or None,
                "root": "0x" + e.weights_root.hex() if e.published else None,
                "published_at": e.published_at,
                "layers": [str(layer) for layer in e.layers],
                "hosts": [{"address": h.address, "endpoint": h.endpoint, "active": h.active} for h in e.hosts],
                "check": checks.get(f"expert {e.index}"),
            }
            for e in model.experts
        ],
    }


def _print_model(chain_id: int, model, checks: dict[str, str]) -> None:
    print(f"model {model.model_id} on chain {chain_id}, owner {model.owner}")
    tolerance = f", tolerance {model.tolerance / 1e6:g}" if model.tolerance else ""
    print(
        f"  {model.mode.label}{tolerance}, {model.expert_count} experts, challenge window {_duration_text(model.challenge_window)}, "
        f"min node stake {_eth(model.min_node_stake)}, min validator stake {_eth(model.min_validator_stake)}"
    )
    gate_check = f"  [{checks['gate']}]" if "gate" in checks else ""
    print(f"  gate  {model.gate_cid}  root 0x{model.gate_root.hex()}{gate_check}")
    rows = []
    for e in model.experts:
        hosts = ", ".join(f"{h.address} {h.endpoint}{'' if h.active else ' (inactive)'}" for h in e.hosts) or "-"
        if e.published:
            row = (str(e.index), f"{e.version}", e.weights_cid, "0x" + e.weights_root.hex(), ", ".join(map(str, e.layers)), hosts)
        else:
            row = (str(e.index), "-", "(not published)", "-", "-", hosts)
        if checks:
            row += (checks.get(f"expert {e.index}", "-"),)
        rows.append(row)
    header = ("expert", "version", "CID", "weights root", "layers", "hosts") + (("check",) if checks else ())
    _table(header, rows)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for line in [header, *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
