"""Experiment 4, cost of verification per policy: throughput (tokens/s), extra compute (redundant:R runs every
expert call on R hosts; optimistic:p has each validator re-execute p of every commitment), gas per 1,000 tokens
(the gas of every transaction mined during the run: task creation, window commitments, receipts, disputes) and
stake moved (wei slashed from the cheater).

Each policy gets its own run over the same test samples, with the model's 3 honest nodes and one fresh `signflip`
cheater (25% of the hosts, manipulating half of its tokens), so that the dispute costs are part of the bill; for
optimistic, one validator. The block range starts after every process has started (staking and registration are
one-off costs, not per token) and ends once the run's windows are committed and its disputes settled. Finalizing
and claiming of windows (after the challenge window) are not in the range; they are listed in the raw data when an
earlier run's fell into it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .localnet import LocalNetwork
from .report import ExperimentResult, Figure, Table, figure_path
from .testbed import WINDOW_SECONDS, gas_used, slashed_stake, testbed

NAME = "cost"
TITLE = "Cost of verification: throughput, extra compute, gas and stake moved per policy"

SETTINGS = {
    "fast": {"dataset": "mnist1d", "policies": ["none", "redundant:3", "optimistic:0.25"], "samples": 150,
             "attack_fraction": 0.5, "dispute_timeout": 40},
    "full": {"dataset": "mnist1d", "policies": ["none", "redundant:3", "optimistic:0.1", "optimistic:0.25"],
             "samples": 1000, "attack_fraction": 0.5, "dispute_timeout": 40},
}  # fmt: skip

# per-window bookkeeping of earlier runs that may land in a run's block range: listed, not counted
NOT_COUNTED = ("ResultLedger.finalize", "ResultLedger.claim")
ETHER = 10**18


def run(setting: str, net: LocalNetwork, out_dir: Path, say: Callable[[str], None]) -> ExperimentResult:
    started = time.monotonic()
    params = SETTINGS[setting]
    bed = testbed(net, params["dataset"], setting, say=say)
    x, y = bed.subset(params["samples"], seed=0)
    runs = []
    for policy in params["policies"]:
        say(f"[{NAME}] {policy}: {len(x)} samples, {len(bed.honest)} honest nodes and 1 cheater")
        runs.append(_measure(bed, policy, x, y, params, say))
    rows = [[r["policy"], _pct(r["accuracy"]), f"{r['tokens_per_s']:,.0f}", f"{r['expert_calls_per_token']:.2f}",
             f"{r['validator_reexecution']:.2f}", f"{r['compute_factor']:.2f}", f"{r['gas_per_1000_tokens']:,.0f}",
             f"{r['slashed_wei'] / ETHER:.2f}"] for r in runs]  # fmt: skip
    table = Table(
        "Cost per policy (1 of 4 nodes cheating on half of its tokens)",
        ["policy", "accuracy", "tokens/s", "expert calls per token", "validator re-execution", "compute x",
         "gas per 1,000 tokens", "stake slashed (ETH)"], rows,
        note="compute x = expert work relative to `none` (replicas + validator re-execution); gas counts every "
             "transaction of the run's blocks except finalize/claim of earlier windows.",
    )  # fmt: skip
    base = next((r for r in runs if r["policy"] == "none"), runs[0])
    findings = []
    for r in runs:
        if r is base:
            findings.append(f"none: {r['tokens_per_s']:,.0f} tokens/s, {r['gas_per_1000_tokens']:,.0f} gas per 1,000 tokens "
                            "(window commitments only), nothing slashed: the cheater keeps its stake.")  # fmt: skip
            continue
        findings.append(
            f"{r['policy']}: {r['tokens_per_s'] / base['tokens_per_s']:.2f}x the throughput of none, {r['compute_factor']:.2f}x "
            f"the expert compute, {r['gas_per_1000_tokens'] / max(base['gas_per_1000_tokens'], 1):.1f}x the gas per token "
            f"({r['gas_per_1000_tokens']:,.0f} per 1,000 tokens), {r['slashed_wei'] / ETHER:.2f} ETH slashed."
        )
    return ExperimentResult(
        name=NAME, title=TITLE, setting=setting, params={**params, "honest_nodes": len(bed.honest), "validators": 1},
        seeds=[0], tables=[table], figures=[_figure(runs, out_dir)], findings=findings, data={"runs": runs},
        wall_seconds=time.monotonic() - started,
    )  # fmt: skip


def _measure(bed, policy: str, x, y, params: dict, say) -> dict[str, Any]:
    nodes = bed.start_cheaters(1, "signflip", fraction=params["attack_fraction"])
    validators, rate = [], 0.0
    if policy.startswith("optimistic:"):
        rate = float(policy.split(":", 1)[1])
        validators = bed.start_validators(1, rate)
    first = bed.block() + 1
    try:
        with bed.session(policy) as session:
            report = bed.run_pass(session, x, y)
        if policy != "none":
            bed.wait_for_slashes([n.address for n in nodes], first, params["dispute_timeout"])
        time.sleep(WINDOW_SECONDS + 3.0)  # the last windows close and are committed
        last = bed.block()
    finally:
        bed.stop(nodes + validators)
    gas = gas_used(bed.chain, first, last)
    counted = gas["total"] - sum(v for k, v in gas.items() if k in NOT_COUNTED)
    tokens = max(1, int(report.get("tokens") or 0))
    expert_calls = (report.get("expert_tokens") or 0) / tokens
    reexecution = rate * len(validators)
    slashed = slashed_stake(bed.chain, [n.address for n in nodes], first)[0]
    say(f"    accuracy {_pct(report['accuracy'])}, {report.get('tokens_per_s', 0):,.0f} tokens/s, "
        f"{1000 * counted / tokens:,.0f} gas per 1,000 tokens, {slashed / ETHER:.2f} ETH slashed")  # fmt: skip
    return {
        "policy": policy, "accuracy": report["accuracy"], "tokens": tokens, "tokens_per_s": report.get("tokens_per_s", 0.0),
        "latency_p50_ms": report.get("latency_p50_ms"), "expert_calls_per_token": expert_calls,
        "validator_reexecution": reexecution, "compute_factor": expert_calls + reexecution,
        "gas": gas, "gas_counted": counted, "gas_per_1000_tokens": 1000 * counted / tokens, "blocks": [first, last],
        "slashed_wei": slashed, "disputes": report.get("disputes"),
    }  # fmt: skip


def _pct(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2%}"


def _figure(runs: list[dict], out_dir: Path) -> Figure:
    from .plots import color, pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    names = [r["policy"] for r in runs]
    colors = [color(n) for n in names]
    for ax, key, label in ((axes[0], "tokens_per_s", "tokens / s"), (axes[1], "compute_factor", "expert compute (x none)"),
                           (axes[2], "gas_per_1000_tokens", "gas per 1,000 tokens")):  # fmt: skip
        ax.bar(names, [r[key] for r in runs], color=colors)
        ax.set_title(label)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    path, link = figure_path(out_dir, "cost.png")
    save(fig, path)
    return Figure(link, "Throughput, expert compute and gas per 1,000 tokens of each policy.")
