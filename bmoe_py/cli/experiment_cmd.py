"""`bmoe experiment`: run the experiments of the report on a local network of real processes."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

_DESCRIPTION = """\
Run one experiment, or all of them, on a whole B-MoE network on this machine: anvil (started on
--chain-port unless a chain answers there), the contract suite (deployed unless the manifest's
deployment is alive), the embedded IPFS node, and `bmoe edge` / `bmoe validator` processes, some of
them cheating. Writes results/<name>.json (tables, findings, raw numbers), PNG plots under
results/figures/ and results/report.md (setting, seeds, machine, wall time, tables, plots, findings).

Experiments:
  inference-attack  1: accuracy against the fraction of cheating nodes, per attack and policy
  training-attack   2: expert-parallel training with cheating trainers (validators, screening)
  detection         3: rounds and time until a cheater is slashed, against the sampling rate and
                       the fraction of tokens it manipulates; honest nodes slashed
  cost              4: tokens/s, extra compute, gas per 1,000 tokens and stake moved per policy
  baseline          5: nobody cheats: every policy gives the in-process model's accuracy
  all               every experiment above, one after the other (one report)

The fast setting takes about a minute per experiment (the test suite runs it); the full setting
is the report's (all of them: about an hour on 2 cores). Every process started is stopped at
the end, also on Ctrl-C; the chain keeps running (`python tools/local_chain.py --stop --port P`).
A network on a chain port other than 8545 keeps its deployment manifest in <state>/deployments."""


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    from bmoe_py.experiments.runner import EXPERIMENTS

    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=[*EXPERIMENTS, "all"], metavar="NAME", help="an experiment, or all")
    parser.add_argument("--setting", choices=("fast", "full"), default="fast", help="fast (default) or full (the report's)")
    parser.add_argument("--out", type=Path, default=Path("results"), metavar="DIR", help="results folder (default: %(default)s)")
    parser.add_argument("--seeds", type=_seeds, metavar="LIST", help="seeds, e.g. 0,1,2 (default: the setting's)")
    parser.add_argument("--state-dir", type=Path, default=Path(".bmoe/experiments"), metavar="DIR",
                        help="logs, node state and IPFS repository (default: %(default)s)")  # fmt: skip
    parser.add_argument("--chain-port", type=int, default=8545, metavar="PORT", help="anvil's port (default: %(default)s)")
    parser.add_argument("--ipfs-port", type=int, default=5001, metavar="PORT", help="IPFS API port (default: %(default)s)")
    parser.add_argument(
        "--report-only", action="store_true",
        help="run nothing: rewrite DIR/report.md from the results already in --out (after a change to how they are "
        "presented); NAME is ignored",
    )  # fmt: skip
    parser.set_defaults(func=_run)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers, not {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds needs at least one seed")
    return seeds


def _run(args: argparse.Namespace) -> int:
    from bmoe_py.experiments.localnet import LocalNetwork, NetworkError
    from bmoe_py.experiments.runner import EXPERIMENTS, run_experiments

    if args.report_only:
        from bmoe_py.experiments.runner import rerender

        try:
            rerender(args.out)
        except FileNotFoundError as exc:
            print(f"bmoe experiment: {exc}", file=sys.stderr)
            return 1
        return 0
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    say = lambda line: print(line, flush=True)  # noqa: E731
    started = time.monotonic()
    command = "bmoe experiment " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [args.name])
    try:
        with LocalNetwork(args.state_dir, chain_port=args.chain_port, ipfs_port=args.ipfs_port, say=say) as net:
            say("==> local chain, contracts and IPFS node")
            net.start_chain()
            net.deploy()
            net.start_ipfs()
            run_experiments(names, net, args.out, setting=args.setting, seeds=args.seeds, say=say, command=command)
    except NetworkError as exc:
        print(f"bmoe experiment: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbmoe experiment: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    say(f"==> done in {time.monotonic() - started:.0f} s")
    return 0
