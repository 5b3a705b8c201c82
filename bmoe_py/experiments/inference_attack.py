"""Experiment 1, inference under attack: test accuracy against the fraction of cheating edge nodes, for every attack
of protocol 8.1, under the policies `none`, `redundant:3` and `optimistic:p`, through the real runtime (an
InferenceSession talking to `bmoe edge` processes; `bmoe validator` processes for optimistic).

The honest nodes of the model (3, hosting every expert) serve throughout; each measurement adds fresh cheaters that
host every expert too, so with c cheaters a fraction c / (3 + c) of the hosts of every expert cheat (1 cheater: 25%,
3 cheaters: 50%). Cheaters manipulate every token they answer (--attack-fraction 1). A cheater proven wrong is
slashed, so every policy gets its own cheaters:
- `none`, then `redundant:3` on the same cheaters (nobody checks under `none`, so they are still staked);
- `optimistic:p` on fresh cheaters, with a validator sampling p of every commitment: a first pass (served by the
  cheaters, unverified), then a second after the disputes the first caused settled (slashed hosts leave routing).
The fraction 0 is measured once per seed and shared by every attack.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .localnet import LocalNetwork
from .report import ExperimentResult, Figure, Table, figure_path
from .testbed import Testbed, slashed_stake, testbed

NAME = "inference-attack"
TITLE = "Inference under attack: accuracy against the fraction of cheating nodes"

ATTACKS = ["gaussian", "signflip", "scale", "random", "targeted"]
HONEST = 3

SETTINGS = {
    "fast": {"datasets": ["mnist1d"], "attacks": ["signflip"], "cheaters": [0, 1], "samples": 150, "seeds": [0],
             "rate": 0.25, "dispute_timeout": 40},
    "full": {"datasets": ["mnist1d", "digits"], "attacks": ATTACKS, "cheaters": [0, 1, 3], "samples": 200,
             "seeds": [0, 1, 2], "rate": 0.25, "dispute_timeout": 40},
}  # fmt: skip


def run(
    setting: str, net: LocalNetwork, out_dir: Path, say: Callable[[str], None], *, seeds: list[int] | None = None
) -> ExperimentResult:
    started = time.monotonic()
    params = dict(SETTINGS[setting])
    if seeds:
        params["seeds"] = list(seeds)
    policies = ["none", "redundant:3", f"optimistic:{params['rate']}"]
    # publishing is sequential (one publisher key); then the data sets run side by side: each has its own model,
    # nodes and session key, and most of a measurement is waiting (process starts, windows, disputes)
    beds = [testbed(net, dataset, setting, honest=HONEST, say=say) for dataset in params["datasets"]]
    first_block = beds[0].block()
    stop = threading.Event()
    pool = ThreadPoolExecutor(len(beds))
    try:
        per_dataset = list(pool.map(lambda bed: _sweep(bed, params, say, stop), beds))
    except BaseException:
        # Ctrl-C or a failed sweep: the other sweep stops before its next measurement, and the processes it is using
        # are stopped by the network's exit, so nothing waits for it here
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    records: list[dict[str, Any]] = [r for rs in per_dataset for r in rs]  # one per (dataset, attack, cheaters, seed, policy)
    summary = _summarise(records, params)
    # a wrong majority (colluding cheaters) gets an honest node challenged: it must win that dispute
    honest_slashed = {bed.dataset: slashed_stake(bed.chain, [n.address for n in bed.honest], first_block)[1] for bed in beds}
    findings = _findings(summary, params) + [
        f"{dataset}: honest nodes slashed: {count} of {HONEST}." for dataset, count in honest_slashed.items()
    ]
    return ExperimentResult(
        name=NAME, title=TITLE, setting=setting, params={**params, "honest_nodes": HONEST, "policies": policies,
                                                         "attack_fraction_of_tokens": 1.0},
        seeds=params["seeds"], tables=_tables(summary, params), figures=_figures(summary, params, out_dir),
        findings=findings, data={"records": records, "summary": summary, "honest_slashed": honest_slashed},
        wall_seconds=time.monotonic() - started,
    )  # fmt: skip


def _sweep(bed: Testbed, params: dict, say, stop: threading.Event) -> list[dict[str, Any]]:
    records = []
    for seed in params["seeds"]:
        x, y = bed.subset(params["samples"], seed)
        for cheaters in params["cheaters"]:
            for attack in params["attacks"] if cheaters else ["(none)"]:
                if stop.is_set():
                    return records
                say(f"[{NAME}] {bed.dataset} seed {seed}: {cheaters} {attack} cheater(s) of {HONEST + cheaters} nodes")
                for record in _measure(bed, attack, cheaters, seed, x, y, params["rate"], params["dispute_timeout"], say):
                    records.append({"dataset": bed.dataset, "seed": seed, "cheaters": cheaters,
                                    "fraction": cheaters / (HONEST + cheaters), **record})  # fmt: skip
    return records


def _measure(bed: Testbed, attack: str, cheaters: int, seed: int, x, y, rate: float, timeout: float, say) -> list[dict]:
    out = []
    # `none`, then `redundant:3`, on the same cheaters: nobody checks under `none`
    nodes = bed.start_cheaters(cheaters, attack, seed=seed) if cheaters else []
    try:
        for policy in ("none", "redundant:3"):
            block = bed.block()
            with bed.session(policy) as session:
                result = bed.run_pass(session, x, y)
            slashed = slashed_stake(bed.chain, [n.address for n in nodes], block)[1] if nodes else 0
            say(f"    {bed.dataset} {attack} x{cheaters} {policy}: accuracy {_pct(result['accuracy'])}" + (f", {slashed}/{cheaters} cheaters slashed" if nodes else ""))
            out.append({"attack": attack, "policy": policy, "accuracy": result["accuracy"], "accuracy_after": None,
                        "slashed": slashed, "error": result.get("error")})  # fmt: skip
    finally:
        bed.stop(nodes)
    # `optimistic:p` on fresh cheaters, a validator watching from here on
    block = bed.block()
    with ThreadPoolExecutor(2) as pool:
        starting = pool.submit(bed.start_validators, 1, rate, block)
        nodes = bed.start_cheaters(cheaters, attack, seed=seed) if cheaters else []
        validators = starting.result()
    policy = f"optimistic:{rate}"
    try:
        with bed.session(policy) as session:
            first = bed.run_pass(session, x, y)
            slashed = bed.wait_for_slashes([n.address for n in nodes], block, timeout) if nodes else 0
            second = bed.run_pass(session, x, y)
        say(f"    {bed.dataset} {attack} x{cheaters} {policy}: accuracy {_pct(first['accuracy'])}, after disputes {_pct(second['accuracy'])}, "
            f"{slashed}/{cheaters} cheaters slashed")  # fmt: skip
        out.append({"attack": attack, "policy": policy, "accuracy": first["accuracy"], "accuracy_after": second["accuracy"],
                    "slashed": slashed, "error": first.get("error") or second.get("error")})  # fmt: skip
    finally:
        bed.stop(nodes + validators)
    return out


def _pct(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2%}"


def _stats(values: list[float | None]) -> dict[str, Any]:
    ok = [v for v in values if v is not None]
    return {
        "mean": statistics.fmean(ok) if ok else None,
        "std": statistics.stdev(ok) if len(ok) > 1 else 0.0 if ok else None,
        "n": len(ok),
        "failed": len(values) - len(ok),
    }


def _summarise(records: list[dict], params: dict) -> list[dict]:
    """Mean and spread over seeds per (dataset, attack, cheaters, policy); fraction 0 is repeated for every attack."""
    summary = []
    for dataset in params["datasets"]:
        for attack in params["attacks"]:
            for cheaters in params["cheaters"]:
                wanted_attack = attack if cheaters else "(none)"
                policies = dict.fromkeys(r["policy"] for r in records)
                for policy in policies:
                    chosen = [r for r in records if r["dataset"] == dataset and r["attack"] == wanted_attack
                              and r["cheaters"] == cheaters and r["policy"] == policy]  # fmt: skip
                    if not chosen:
                        continue
                    summary.append({
                        "dataset": dataset, "attack": attack, "cheaters": cheaters,
                        "fraction": cheaters / (HONEST + cheaters), "policy": policy,
                        "accuracy": _stats([r["accuracy"] for r in chosen]),
                        "accuracy_after": _stats([r["accuracy_after"] for r in chosen]) if policy.startswith("optimistic") else None,
                        "slashed": sum(r["slashed"] for r in chosen), "cheaters_total": cheaters * len(chosen),
                    })  # fmt: skip
    return summary


def _cell(stats: dict | None) -> str:
    if not stats or stats["mean"] is None:
        return "failed" if stats else "-"
    text = f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"
    return text + (f" ({stats['failed']} failed)" if stats["failed"] else "")


def _tables(summary: list[dict], params: dict) -> list[Table]:
    tables = []
    for dataset in params["datasets"]:
        rows = []
        for s in summary:
            if s["dataset"] != dataset:
                continue
            row = [s["attack"], f"{s['fraction']:.0%}", s["policy"], _cell(s["accuracy"]), _cell(s["accuracy_after"]),
                   f"{s['slashed']}/{s['cheaters_total']}"]  # fmt: skip
            rows.append(row)
        tables.append(Table(
            f"{dataset}: test accuracy (%) with cheating nodes, mean ± std over seeds {params['seeds']}",
            ["attack", "cheating nodes", "policy", "accuracy", "after disputes", "cheaters slashed"], rows,
            note=f"{params['samples']} test samples per pass; {HONEST} honest nodes; cheaters manipulate every token; "
                 "'after disputes' is a second pass once the disputes of the first settled (optimistic only).",
        ))  # fmt: skip
    return tables


def _figures(summary: list[dict], params: dict, out_dir: Path) -> list[Figure]:
    from .plots import color, pyplot, save

    plt = pyplot()
    figures = []
    for dataset in params["datasets"]:
        attacks = params["attacks"]
        fig, axes = plt.subplots(1, len(attacks), figsize=(3.2 * len(attacks), 3.2), sharey=True, squeeze=False)
        for ax, attack in zip(axes[0], attacks):
            chosen = [s for s in summary if s["dataset"] == dataset and s["attack"] == attack]
            for policy in dict.fromkeys(s["policy"] for s in chosen):
                curves = [("accuracy", policy, "-")]
                if policy.startswith("optimistic"):
                    curves = [("accuracy", f"{policy} (1st pass)", "-"), ("accuracy_after", f"{policy} after disputes", "--")]
                for key, label, style in curves:
                    points = [(s["fraction"], s[key]) for s in chosen if s["policy"] == policy and s[key] and s[key]["mean"] is not None]
                    if not points:
                        continue
                    xs = [100 * p[0] for p in points]
                    ax.errorbar(xs, [100 * p[1]["mean"] for p in points], yerr=[100 * p[1]["std"] for p in points],
                                label=label, color=color(label if "after" in label else policy), linestyle=style,
                                marker="o", capsize=3)  # fmt: skip
            ax.set_title(attack)
            ax.set_xlabel("cheating nodes (%)")
            ax.set_ylim(0, 100)
        axes[0][0].set_ylabel("test accuracy (%)")
        axes[0][-1].legend(fontsize=7, loc="lower left")
        path, link = figure_path(out_dir, f"inference_attack_{dataset}.png")
        save(fig, path)
        figures.append(Figure(link, f"{dataset}: accuracy against the fraction of cheating nodes per attack and policy "
                                    f"(mean ± std over seeds {params['seeds']})."))  # fmt: skip
    return figures


def _findings(summary: list[dict], params: dict) -> list[str]:
    findings = []
    worst = max(params["cheaters"])
    if not worst:
        return ["no cheaters in this setting"]
    for dataset in params["datasets"]:
        at = [s for s in summary if s["dataset"] == dataset and s["cheaters"] == worst]
        clean = [s for s in summary if s["dataset"] == dataset and s["cheaters"] == 0 and s["policy"] == "none"]
        clean_acc = clean[0]["accuracy"]["mean"] if clean and clean[0]["accuracy"]["mean"] is not None else None

        def mean_of(policy_prefix: str, key: str = "accuracy") -> float | None:
            values = [s[key]["mean"] for s in at if s["policy"].startswith(policy_prefix) and s[key] and s[key]["mean"] is not None]
            return statistics.fmean(values) if values else None

        fraction = worst / (HONEST + worst)
        parts = [f"{dataset}, {fraction:.0%} cheating nodes, mean over attacks {', '.join(params['attacks'])}:"]
        if clean_acc is not None:
            parts.append(f"clean accuracy {clean_acc:.1%};")
        for label, prefix, key in (("none", "none", "accuracy"), ("redundant:3", "redundant", "accuracy"),
                                   ("optimistic 1st pass", "optimistic", "accuracy"),
                                   ("optimistic after disputes", "optimistic", "accuracy_after")):  # fmt: skip
            value = mean_of(prefix, key)
            parts.append(f"{label} {'-' if value is None else f'{value:.1%}'},")
        findings.append(" ".join(parts).rstrip(",") + ".")
        slashed = sum(s["slashed"] for s in at if not s["policy"].startswith("none"))
        total = sum(s["cheaters_total"] for s in at if not s["policy"].startswith("none"))
        findings.append(f"{dataset}: {slashed} of {total} cheaters met under redundant:3 and optimistic were slashed.")
        failed = [s for s in at if s["accuracy"]["failed"]]
        if failed:
            findings.append(f"{dataset}: {len(failed)} configurations had passes the publisher could not finish "
                            "(no majority among the replicas: expert unavailable), counted as failed, not as accuracy.")  # fmt: skip
    return findings
