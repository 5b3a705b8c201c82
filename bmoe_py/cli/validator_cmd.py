"""`bmoe validator`: watch a model's commitments, re-execute a sample, and carry disputes to their end."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .options import CommandError, amount, chain_options, connect, ipfs_option, key_options, private_key

log = logging.getLogger("bmoe.validator")

_DESCRIPTION = """\
Run a validator for one model. It polls the ResultLedger for CommitmentPosted events of the model (from
--from-block, then from where it stopped), fetches each commitment's window bundle from IPFS, checks it
against the commitment, re-executes ceil(p * n) randomly chosen tokens with the registered weights
(verified against the chain), and challenges one wrong token per wrong commitment: FraudProof for exact
models (it then proves the first wrong row, or wins by timeout if the node stays silent), CommitteeDispute
for float models. It also votes in the committees it is drawn on, draws and finalizes committees when due,
and claims its rewards. Its state (block cursor, checks, disputes, votes and their salts) is kept in an
SQLite file under --state-dir, so a restart neither forgets a dispute nor opens one twice.

For float models the key must be a staked validator: it deposits up to the model's minimum validator stake
(or --stake) and joins the validator set if needed. Stop with Ctrl-C or SIGTERM."""


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=int, required=True, metavar="MODEL_ID", help="the model to validate")
    parser.add_argument("--sample-rate", type=_rate, default=0.1, metavar="P",
                        help="fraction of each commitment's tokens to re-execute, in (0, 1] (default: %(default)s)")
    parser.add_argument("--state-dir", type=Path, default=Path.home() / ".bmoe" / "validator", metavar="DIR",
                        help="folder of the SQLite state (default: %(default)s)")
    parser.add_argument("--stake", type=amount, metavar="AMOUNT",
                        help="stake to hold as a validator, e.g. 1ether (default: the model's minimum for float "
                             "models, none for exact ones)")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="seconds between passes (default: %(default)s)")
    parser.add_argument("--from-block", type=int, default=0, metavar="N",
                        help="first block to scan when the state is new (default: %(default)s)")
    parser.add_argument("--ready-file", type=Path, metavar="PATH",
                        help="write {address, model, pid, state} as JSON here once watching")
    chain_options(parser)
    key_options(parser, "the validator's")
    ipfs_option(parser)
    parser.set_defaults(func=run)  # fmt: skip


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"the sample rate must be in (0, 1], not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from bmoe_py.chain.client import ChainError
    from bmoe_py.chain.manifest import ManifestError
    from bmoe_py.storage.errors import IpfsError

    try:
        return _run(args)
    except (CommandError, ChainError, ManifestError, IpfsError) as exc:
        print(f"bmoe validator: error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from bmoe_py.publisher.records import Mode, read_model
    from bmoe_py.storage.client import IpfsClient
    from bmoe_py.validator.service import Validator, ValidatorConfig
    from bmoe_py.validator.store import ValidatorStore

    chain = connect(args, private_key(args))
    model = read_model(chain, args.model, experts=False)
    float_model = model.mode is Mode.FLOAT
    _ensure_stake(chain, args.stake if args.stake is not None else (model.min_validator_stake if float_model else 0))

    state = args.state_dir / f"validator-{chain.chain_id}-model{args.model}-{chain.address.lower()}.sqlite"
    store = ValidatorStore(state)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with IpfsClient(args.ipfs, timeout=30) as ipfs:
        config = ValidatorConfig(args.model, args.sample_rate, args.poll, args.from_block, committee=float_model)
        validator = Validator(chain, ipfs, store, config)
        if args.ready_file:
            tmp = args.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"address": chain.address, "model": args.model, "pid": os.getpid(), "state": str(state)}))
            tmp.replace(args.ready_file)  # atomic: a reader never sees half a file
        log.info("validator %s watching model %d (%s, sample rate %g), state %s",
                 chain.address, args.model, model.mode.label, args.sample_rate, state)  # fmt: skip
        validator.run(stop)
    s = validator.stats
    log.info("validator stopped: %d commitments, %d checked, %d wrong, %d disputes (%d won, %d lost), %d votes",
             s.commitments, s.checked, s.wrong, s.disputes, s.won, s.lost, s.votes)  # fmt: skip
    store.close()
    return 0


def _ensure_stake(chain, target: int) -> None:
    if target <= 0:
        return
    staking = chain.staking
    have = int(chain.call(staking.functions.stakeOf(chain.address)))
    if have < target:
        log.info("depositing %d wei of stake", target - have)
        chain.send(staking.functions.deposit(), value=target - have)
    if not chain.call(staking.functions.isValidator(chain.address)):
        chain.send(staking.functions.joinValidators())
        log.info("joined the validator set")
