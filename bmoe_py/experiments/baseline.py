"""Experiment 5, the clean baseline: nobody cheats. Verified inference (`redundant:3`, `optimistic:p` with a
validator watching) and traditional inference (`none`) through the real runtime must give the same accuracy, equal
to the published model's accuracy in one process (ExactMoE): exact int8 experts make an honest network
bit-identical to the in-process model, whatever the policy."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .localnet import LocalNetwork
from .report import ExperimentResult, Figure, Table, figure_path
from .testbed import testbed

NAME = "baseline"
TITLE = "Clean baseline: verified and traditional inference give the same accuracy"

SETTINGS = {
    "fast": {"datasets": ["mnist1d"], "samples": 200, "rate": 0.25},
    "full": {"datasets": ["mnist1d", "digits"], "samples": 2000, "rate": 0.25},
}


def run(setting: str, net: LocalNetwork, out_dir: Path, say: Callable[[str], None]) -> ExperimentResult:
    started = time.monotonic()
    params = SETTINGS[setting]
    policies = ["none", "redundant:3", f"optimistic:{params['rate']}"]
    rows, data = [], {}
    for dataset in params["datasets"]:
        bed = testbed(net, dataset, setting, say=say)
        x, y = bed.subset(params["samples"], seed=0)
        reference = bed.exact_reference(x, y)
        exact = reference["accuracy"]
        say(f"[{NAME}] {dataset}: in-process ExactMoE accuracy {exact:.2%} on {len(x)} samples")
        entry = {"exact_accuracy": exact, "exact_predictions_digest": reference["predictions_digest"], "samples": len(x),
                 "honest_nodes": len(bed.honest), "policies": {}}
        validators = bed.start_validators(1, params["rate"])
        try:
            for policy in policies:
                with bed.session(policy) as session:
                    result = bed.run_pass(session, x, y)
                say(f"[{NAME}] {dataset} {policy}: accuracy {_pct(result['accuracy'])}, {result.get('tokens_per_s', 0):,.0f} tokens/s")
                entry["policies"][policy] = result
                same = result.get("predictions_digest") == reference["predictions_digest"]
                rows.append([dataset, policy, len(x), _pct(result["accuracy"]), f"{exact:.2%}", "yes" if same else "NO"])
        finally:
            bed.stop(validators)
        data[dataset] = entry

    findings = []
    for dataset, entry in data.items():
        accuracies = {p: r["accuracy"] for p, r in entry["policies"].items()}
        digests = {r.get("predictions_digest") for r in entry["policies"].values()}
        entry["all_equal"] = digests == {entry["exact_predictions_digest"]}
        if entry["all_equal"]:
            findings.append(
                f"{dataset}: every policy gives {entry['exact_accuracy']:.2%} on {entry['samples']} test samples, the "
                "in-process ExactMoE accuracy, with the same prediction for every sample."
            )
        else:
            findings.append(
                f"{dataset}: the policies do NOT all match the in-process accuracy {entry['exact_accuracy']:.2%}: "
                + ", ".join(f"{p} {_pct(a)}" for p, a in accuracies.items())
            )
    figures = [_figure(data, policies, out_dir)]
    return ExperimentResult(
        name=NAME, title=TITLE, setting=setting, params={**params, "policies": policies}, seeds=[0],
        tables=[Table("Accuracy without cheaters", ["data set", "policy", "samples", "accuracy", "in-process ExactMoE",
                                                    "same predictions"], rows,
                      note="same predictions: every sample gets the class the in-process model gives it")],
        figures=figures, findings=findings, data=data, wall_seconds=time.monotonic() - started,
    )  # fmt: skip


def _pct(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2%}"


def _figure(data: dict, policies: list[str], out_dir: Path) -> Figure:
    from .plots import color, pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / (len(policies) + 1)
    for i, dataset in enumerate(data):
        entry = data[dataset]
        ax.bar(i, 100 * entry["exact_accuracy"], width, color="#333333", label="in process" if i == 0 else None)
        for j, policy in enumerate(policies):
            accuracy = entry["policies"][policy]["accuracy"] or 0.0
            ax.bar(i + (j + 1) * width, 100 * accuracy, width, color=color(policy), label=policy if i == 0 else None)
    ax.set_xticks([i + width * len(policies) / 2 for i in range(len(data))], list(data))
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("no cheaters: every policy equals the in-process model")
    path, link = figure_path(out_dir, "baseline.png")
    save(fig, path)
    return Figure(link, "Accuracy of each policy without cheaters next to the in-process ExactMoE accuracy.")
