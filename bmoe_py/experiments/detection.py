"""Experiment 3, detection: how many rounds of inference, and how much time, until a cheating node is slashed,
against the validators' sampling rate p and the fraction of its tokens the node manipulates; and how many honest
nodes were slashed (the exact int8 check makes that 0 by construction: a sampled honest token always matches).

A round is one pass of a few test samples under policy `none` (the publisher checks nothing itself, so only the
validator can catch the cheater), then a wait of one commitment window: the nodes commit the round's windows, the
validator (one `bmoe validator`, sampling ceil(p * n) of the n tokens of every commitment) re-executes its sample
and, on a wrong token, proves the fraud. Each (p, fraction) cell gets a fresh `signflip` cheater next to the
model's 3 honest nodes; a cell ends when the cheater is slashed or after the last round.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .localnet import LocalNetwork
from .report import ExperimentResult, Figure, Table, figure_path
from .testbed import WINDOW_SECONDS, seconds_to_slash, slashed_stake, testbed

NAME = "detection"
TITLE = "Detection: rounds and time until a cheater is slashed"

SETTINGS = {
    "fast": {"dataset": "mnist1d", "rates": [0.25], "fractions": [0.5], "max_rounds": 4, "samples_per_round": 40,
             "seeds": [0], "attack": "signflip"},
    "full": {"dataset": "mnist1d", "rates": [0.01, 0.05, 0.25], "fractions": [0.02, 0.1, 0.5], "max_rounds": 6,
             "samples_per_round": 40, "seeds": [0], "attack": "signflip"},
}  # fmt: skip


def run(
    setting: str, net: LocalNetwork, out_dir: Path, say: Callable[[str], None], *, seeds: list[int] | None = None
) -> ExperimentResult:
    started = time.monotonic()
    params = dict(SETTINGS[setting])
    if seeds:
        params["seeds"] = list(seeds)
    bed = testbed(net, params["dataset"], setting, say=say)
    first_block = bed.block()
    cells: list[dict[str, Any]] = []
    for seed in params["seeds"]:
        for rate in params["rates"]:
            # one validator per rate, watching from here on; the cells of this rate run one after the other
            validators = bed.start_validators(1, rate)
            try:
                for fraction in params["fractions"]:
                    cell = _cell(bed, rate, fraction, seed, params, say)
                    cells.append(cell)
            finally:
                bed.stop(validators)
    honest = [n.address for n in bed.honest]
    honest_slashed = slashed_stake(bed.chain, honest, first_block)
    data = {"cells": cells, "honest_nodes": honest, "honest_slashed": honest_slashed[1], "honest_slashed_wei": honest_slashed[0]}
    return ExperimentResult(
        name=NAME, title=TITLE, setting=setting, params={**params, "honest_nodes": len(honest),
                                                         "window_seconds": WINDOW_SECONDS},
        seeds=params["seeds"], tables=[_table(cells, params, honest_slashed[1], len(honest))],
        figures=[_figure(cells, params, out_dir)], findings=_findings(cells, params, honest_slashed[1], len(honest)),
        data=data, wall_seconds=time.monotonic() - started,
    )  # fmt: skip


def _cell(bed, rate: float, fraction: float, seed: int, params: dict, say) -> dict[str, Any]:
    block = bed.block()
    (cheater,) = bed.start_cheaters(1, params["attack"], seed=seed, fraction=fraction)
    say(f"[{NAME}] p={rate}, cheater manipulates {fraction:.0%} of its tokens")
    rounds_needed = None
    served = 0
    began = time.monotonic()
    seconds = None
    try:
        with bed.session("none") as session:
            for round_ in range(1, params["max_rounds"] + 1):
                x, y = bed.subset(params["samples_per_round"], seed=1000 * seed + round_)
                report = bed.run_pass(session, x, y)
                served += report.get("calls_per_host", {}).get(cheater.address, 0)
                # the round's windows close WINDOW_SECONDS after their first request; then commit, check, prove
                deadline = time.monotonic() + WINDOW_SECONDS + 4.0
                while time.monotonic() < deadline:
                    if slashed_stake(bed.chain, [cheater.address], block)[1]:
                        break
                    time.sleep(0.5)
                if slashed_stake(bed.chain, [cheater.address], block)[1]:
                    rounds_needed, seconds = round_, time.monotonic() - began
                    break
    finally:
        bed.stop([cheater])
    chain_seconds = seconds_to_slash(bed.chain, [cheater.address], block)
    say(f"    " + (f"slashed after {rounds_needed} round(s), {seconds:.1f} s" if rounds_needed else
                   f"not slashed within {params['max_rounds']} rounds"))  # fmt: skip
    return {"rate": rate, "fraction": fraction, "seed": seed, "rounds": rounds_needed, "seconds": seconds,
            "chain_seconds_commit_to_slash": chain_seconds[0] if chain_seconds else None,
            "requests_served": served, "slashed": rounds_needed is not None}  # fmt: skip


def _agg(cells: list[dict], rate: float, fraction: float) -> dict[str, Any]:
    chosen = [c for c in cells if c["rate"] == rate and c["fraction"] == fraction]
    caught = [c for c in chosen if c["slashed"]]
    return {
        "caught": len(caught), "cells": len(chosen),
        "rounds": statistics.fmean(c["rounds"] for c in caught) if caught else None,
        "seconds": statistics.fmean(c["seconds"] for c in caught) if caught else None,
        "chain_seconds": statistics.fmean(c["chain_seconds_commit_to_slash"] for c in caught
                                          if c["chain_seconds_commit_to_slash"] is not None) if caught else None,
    }  # fmt: skip


def _table(cells: list[dict], params: dict, honest_slashed: int, honest: int) -> Table:
    rows = []
    for rate in params["rates"]:
        for fraction in params["fractions"]:
            a = _agg(cells, rate, fraction)
            rows.append([rate, f"{fraction:.0%}", f"{a['caught']}/{a['cells']}",
                         "-" if a["rounds"] is None else f"{a['rounds']:.1f}",
                         "-" if a["seconds"] is None else f"{a['seconds']:.1f}",
                         "-" if a["chain_seconds"] is None else f"{a['chain_seconds']:.0f}"])  # fmt: skip
    return Table(
        f"Rounds until the cheater is slashed (at most {params['max_rounds']} rounds of {params['samples_per_round']} samples)",
        ["sampling rate p", "tokens manipulated", "slashed", "rounds (mean)", "wall s (mean)", "chain s commit→slash"],
        rows, note=f"honest nodes slashed: {honest_slashed} of {honest}; '-': never slashed within the rounds.",
    )  # fmt: skip


def _figure(cells: list[dict], params: dict, out_dir: Path) -> Figure:
    from .plots import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    never = params["max_rounds"] + 1
    for fraction in params["fractions"]:
        ys = []
        for rate in params["rates"]:
            a = _agg(cells, rate, fraction)
            ys.append(a["rounds"] if a["rounds"] is not None else never)
        ax.plot(params["rates"], ys, marker="o", label=f"{fraction:.0%} of tokens manipulated")
    ax.axhline(never, color="gray", linestyle=":", label="not slashed")
    ax.set_xscale("log")
    ax.set_xlabel("validator sampling rate p")
    ax.set_ylabel("rounds until slashed")
    ax.set_ylim(0, never + 0.5)
    ax.legend(fontsize=8)
    path, link = figure_path(out_dir, "detection.png")
    save(fig, path)
    return Figure(link, "Rounds of inference until the cheating node is slashed, against the sampling rate p; "
                        f"points on the dotted line were not slashed within {params['max_rounds']} rounds.")  # fmt: skip


def _findings(cells: list[dict], params: dict, honest_slashed: int, honest: int) -> list[str]:
    findings = [f"Honest nodes slashed: {honest_slashed} of {honest} (exact int8 re-execution never blames an honest node)."]
    for rate in params["rates"]:
        parts = []
        for fraction in params["fractions"]:
            a = _agg(cells, rate, fraction)
            parts.append(f"{fraction:.0%} manipulated: "
                         + (f"slashed after {a['rounds']:.1f} round(s) ({a['seconds']:.0f} s)" if a["rounds"] is not None
                            else f"not slashed within {params['max_rounds']} rounds"))  # fmt: skip
        findings.append(f"p = {rate}: " + "; ".join(parts) + ".")
    return findings
