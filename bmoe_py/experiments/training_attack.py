"""Experiment 2: training under attack. A Float MoE (8 experts, top-2, MNIST-1D) is trained from a fresh random
initialisation across real `bmoe edge` trainer processes (docs/protocol.md 11), with 0%, 25% and ~40% of them
malicious (`--attack gaussian`: large Gaussian noise on every output they return), in two modes:

- traditional: nobody checks; the noisy experts poison the mixture and the gate learns to route around them.
- verified: `bmoe validator` processes replay a sample of every round's steps (all of them for trainers the
  screening flagged) and challenge wrong ones through the committee dispute; the coordinator screens the trainers
  every round (flags on chain), blacklists a slashed trainer, rolls its experts back to their last good version and
  hands them to an honest trainer.

Per round: test accuracy of the registered model and the expert load imbalance (max/mean and coefficient of
variation of the fraction of routing slots per expert), flags (true and false positives), slashes, blacklistings.

The committee's commit and reveal windows are a day each in the default deployment; the experiment fast-forwards
anvil's clock past them once every member has committed (and then revealed), which is what waiting would do.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .localnet import PUBLISHER_KEY, LocalNetwork, Process
from .report import ExperimentResult, Figure, Table, figure_path

NAME = "training-attack"
TITLE = "Training under attack: malicious trainers, traditional vs verified"

# (malicious trainers, mode) per scenario; trainer t trains experts t, t + T, ... of the 8
SETTINGS: dict[str, dict[str, Any]] = {
    "fast": {
        "trainers": 4, "rounds": 3, "steps": 8, "batch_size": 64, "validators": 3, "sample_rate": 0.5,
        "scenarios": [(1, "verified")], "eval_samples": 1000,
        "d_model": 32, "d_hidden": 64, "dispute_wait": 25.0,
    },
    "full": {
        "trainers": 8, "rounds": 8, "steps": 25, "batch_size": 64, "validators": 3, "sample_rate": 0.25,
        "scenarios": [(0, "traditional"), (0, "verified"), (2, "traditional"), (2, "verified"), (3, "traditional"), (3, "verified")],
        "eval_samples": None, "d_model": 32, "d_hidden": 64, "dispute_wait": 30.0,
    },
}  # fmt: skip
EXPERTS = 8
ATTACK = ["--attack", "gaussian", "--attack-strength", "20", "--attack-fraction", "1.0"]
TOLERANCE = 1000  # millionths: replays on the same CPU agree far closer
LR = 1e-2


def run(setting: str, net: LocalNetwork, out_dir: Path, say: Callable[[str], None], seeds: list[int] | None = None) -> ExperimentResult:
    started = time.monotonic()
    params = dict(SETTINGS[setting])
    seed = (seeds or [0])[0]
    from ..model.data import load_dataset

    data = load_dataset("mnist1d")
    records = []
    for malicious, mode in params["scenarios"]:
        say(f"training-attack: {malicious}/{params['trainers']} malicious trainers, {mode}")
        records.append(_scenario(net, data, params, malicious, mode, seed, say))
    result = ExperimentResult(
        name=NAME, title=TITLE, setting=setting,
        params={**params, "experts": EXPERTS, "k": 2, "dataset": "mnist1d", "attack": " ".join(ATTACK),
                "expert_lr": LR, "tolerance": TOLERANCE},
        seeds=[seed], **present({'scenarios': records}, out_dir),
        data={"scenarios": records}, wall_seconds=time.monotonic() - started,
    )  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------- one scenario


def _scenario(net: LocalNetwork, data, params: dict, malicious: int, mode: str, seed: int, say) -> dict[str, Any]:
    import torch

    from ..model.moe import MoEConfig, MoEModel
    from ..publisher.prepare import float_model_files
    from ..publisher.publish import PublishParams, publish_model
    from ..storage.client import IpfsClient
    from ..training.coordinator import Trainer, TrainingConfig, TrainingSession

    chain = net.connect(PUBLISHER_KEY)
    ipfs = IpfsClient(net.ipfs_api, timeout=30)
    torch.manual_seed(seed)
    config = MoEConfig(
        input_dim=data.input_dim, num_classes=data.num_classes, patch_size=8, patch_stride=4,
        d_model=params["d_model"], d_hidden=params["d_hidden"], num_experts=EXPERTS, k=2,
    )  # fmt: skip
    published = publish_model(chain, ipfs, float_model_files(MoEModel(config)), PublishParams(challenge_window=600, tolerance=TOLERANCE))
    model_id = published.model_id
    count = params["trainers"]
    specs = [(f"m{model_id}-{'cheat' if t < malicious else 'honest'}-{t}", ATTACK + ["--attack-seed", str(seed * 100 + t)] if t < malicious else []) for t in range(count)]
    processes: list[Process] = []
    clock = None
    try:
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(net.start_edge, name, model_id, list(range(EXPERTS)), extra=extra) for name, extra in specs]
            nodes = [f.result() for f in futures]
        processes += nodes
        cheaters = {n.address for n in nodes[:malicious]}
        trainers = {e: Trainer(nodes[e % count].address, nodes[e % count].url) for e in range(EXPERTS)}
        if mode == "verified":
            block = int(chain.w3.eth.block_number)
            extra = ["--sample-rate", str(params["sample_rate"]), "--from-block", str(block), "--poll", "0.5"]
            with ThreadPoolExecutor(params["validators"]) as pool:
                futures = [pool.submit(net.start_validator, f"m{model_id}-validator-{i}", model_id, extra=extra) for i in range(params["validators"])]
                processes += [f.result() for f in futures]
            clock = DisputeClock(net.connect(net.new_key()), cheaters | {n.address for n in nodes})
            clock.start()
        session = TrainingSession(
            chain, ipfs, model_id, trainers, data,
            TrainingConfig(rounds=params["rounds"], steps_per_round=params["steps"], batch_size=params["batch_size"],
                           expert_lr=LR, local_lr=LR, mode=mode, eval_samples=params["eval_samples"], seed=seed),
        )  # fmt: skip
        rounds = []
        accuracy0, load0 = session.evaluate()
        try:
            for r in range(params["rounds"]):
                result = session.train_round()
                if mode == "verified" and malicious and r < params["rounds"] - 1 and not cheaters <= session.dropped:
                    _wait_for_slashes(session, cheaters, params["dispute_wait"], say)
                entry = result.to_dict()
                entry["true_flags"] = sum(1 for f in result.flags if f.node in cheaters)
                entry["false_flags"] = sum(1 for f in result.flags if f.node not in cheaters)
                rounds.append(entry)
                flagged = ", ".join(f"{'cheater' if f.node in cheaters else 'HONEST'} expert {f.expert} ({f.reason})" for f in result.flags)
                say(f"  round {result.round}: accuracy {result.accuracy:.3f}, imbalance {result.imbalance_max_mean:.2f}, "
                    f"flags {entry['true_flags']} true / {entry['false_flags']} false [{flagged}], dropped {len(result.dropped)}, "
                    f"rolled back {sorted(result.rolled_back)}")  # fmt: skip
            if mode == "verified" and malicious:
                # the last round's commitments: give the disputes a last chance, then the coordinator's drop pass
                _wait_for_slashes(session, cheaters, params["dispute_wait"], say)
                dropped, rolled = session._drop_slashed()
                if rounds:
                    rounds[-1]["dropped"] += dropped
                    rounds[-1]["rolled_back"].update({str(k): v for k, v in rolled.items()})
        finally:
            session.close()
        slashed = session.slashed_trainers()
        blacklisted = {a for a in cheaters | {n.address for n in nodes} if mode == "verified" and session.recorder.is_blacklisted(a)}
        return {
            "malicious": malicious, "trainers": count, "fraction": malicious / count, "mode": mode, "model_id": model_id,
            "initial_accuracy": accuracy0, "initial_load": load0, "rounds": rounds,
            "cheaters": sorted(cheaters), "slashed": sorted(slashed), "blacklisted": sorted(blacklisted),
            "honest_slashed": sorted(slashed - cheaters),
            "final_trainers": {str(e): t.address for e, t in session.trainers.items()},
        }  # fmt: skip
    finally:
        if clock is not None:
            clock.stop()
        for process in processes:
            net.stop(process)


def _wait_for_slashes(session, cheaters: set[str], timeout: float, say, grace: float = 6.0) -> None:
    """Waits until every cheater is slashed, while a committee dispute against one of them is under way (at most
    `timeout`); without any such dispute, only `grace` seconds (the validators' time to replay and challenge)."""
    started = time.monotonic()
    wanted = {c.lower() for c in cheaters}
    while True:
        slashed = session.slashed_trainers() | session.dropped
        if cheaters <= slashed:
            return
        elapsed = time.monotonic() - started
        challenged = any(
            log["args"]["node"].lower() in wanted
            for log in session.chain.committee.events.Challenged.get_logs(from_block=session.from_block)
        )
        if elapsed > timeout or (not challenged and elapsed > grace):
            say(f"    {len(slashed & cheaters)}/{len(cheaters)} cheaters slashed after {elapsed:.0f}s "
                f"({'a dispute is still open' if challenged else 'no dispute against them'})")  # fmt: skip
            return
        time.sleep(1.0)


class DisputeClock:
    """Moves committee disputes against `nodes` through their day-long windows on anvil: mines a block now and then
    (the draw needs the anchor's next block), fast-forwards the clock to the next deadline once every open dispute
    is done with its current phase (drawn, every member committed, every committed vote revealed), and finalizes
    (anyone may) the disputes whose reveal deadline has passed.

    The clock is shared: a warp for one dispute passes the deadlines of every other dispute opened at about the
    same time, so it waits for all of them (several validators challenge one commitment within seconds). A dispute
    that makes no progress for `patience` seconds of real time (a member that never votes) stops blocking.
    """

    def __init__(self, chain, nodes: set[str], patience: float = 20.0) -> None:
        self.chain = chain
        self.nodes = {n.lower() for n in nodes}
        self.patience = patience
        self._progress: dict[int, tuple[tuple, float]] = {}  # dispute -> (its last seen state, since when)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._tick()
            except Exception:  # a transient RPC failure must not end the experiment; the next tick retries
                pass

    def _tick(self) -> None:
        w3, committee = self.chain.w3, self.chain.committee
        w3.provider.make_request("evm_mine", [])
        now = int(w3.eth.get_block("latest")["timestamp"])
        targets, blocked = [], False
        for dispute_id in range(1, int(committee.functions.disputeCount().call()) + 1):
            d = committee.functions.dispute(dispute_id).call()
            node, draw_deadline, commit_deadline, reveal_deadline, phase = d[2].lower(), d[6], d[7], d[8], d[9]
            if node not in self.nodes or phase in (0, 4):  # None, Resolved
                continue
            if phase == 1:  # AwaitingDraw: the validators draw within seconds
                state, target, ready = ("draw",), draw_deadline, False
            elif now > reveal_deadline:
                self.chain.send(committee.functions.finalize(dispute_id))
                continue
            else:
                members = committee.functions.committee(dispute_id).call()[0]
                committed = len(committee.events.VoteCommitted.get_logs(from_block=0, argument_filters={"disputeId": dispute_id}))
                revealed = len(committee.events.VoteRevealed.get_logs(from_block=0, argument_filters={"disputeId": dispute_id}))
                if now <= commit_deadline:
                    state, target, ready = ("commit", committed), commit_deadline, committed >= len(members)
                else:
                    state, target, ready = ("reveal", revealed), reveal_deadline, revealed >= committed
            if not ready and not self._stalled(dispute_id, state):
                blocked = True
            targets.append(target)
        if targets and not blocked:
            self._warp(min(targets) + 1 - now)

    def _stalled(self, dispute_id: int, state: tuple) -> bool:
        seen, since = self._progress.get(dispute_id, (None, 0.0))
        if seen != state:
            self._progress[dispute_id] = (state, time.monotonic())
            return False
        return time.monotonic() - since > self.patience

    def _warp(self, seconds: int) -> None:
        if seconds > 0:
            self.chain.w3.provider.make_request("evm_increaseTime", [int(seconds)])
        self.chain.w3.provider.make_request("evm_mine", [])


# ---------------------------------------------------------------------------------------------- report

STARVED = 0.01  # an expert with less than 1% of the routing slots is one the gate has given up on


def present(data: dict, out_dir: Path) -> dict[str, Any]:
    """Tables, figures and findings from the raw scenarios (what `bmoe experiment --report-only` re-renders)."""
    records = data["scenarios"]
    return {"tables": [_table(records)], "figures": _figures(records, out_dir), "findings": _findings(records)}


def _label(record: dict) -> str:
    return f"{record['malicious']}/{record['trainers']} malicious ({record['fraction']:.1%}), {record['mode']}"


def _cheater_share(record: dict) -> float:
    """Mean over the rounds a cheater trained of the routing share of the experts it trained (test split)."""
    cheaters = set(record["cheaters"])
    shares = [
        sum(x["load"][int(e)] for e, t in x["trainers"].items() if t in cheaters)
        for x in record["rounds"]
        if any(t in cheaters for t in x["trainers"].values())
    ]  # fmt: skip
    return float(np.mean(shares)) if shares else float("nan")


def _starved(load: list[float]) -> int:
    return sum(1 for share in load if share < STARVED)


def _cheater_rounds(record: dict) -> int:
    """How many rounds some cheater trained (a dropped cheater's experts go to honest trainers from the next)."""
    cheaters = set(record["cheaters"])
    return sum(1 for x in record["rounds"] if any(t in cheaters for t in x["trainers"].values()))


def _table(records: list[dict]) -> Table:
    rows = []
    for r in records:
        last = r["rounds"][-1] if r["rounds"] else {}
        rows.append([
            f"{r['malicious']}/{r['trainers']} ({r['fraction']:.1%})", r["mode"], round(r["initial_accuracy"], 3),
            round(last.get("accuracy", float("nan")), 3),
            f"{_cheater_share(r):.1%}" if r["malicious"] else "-", f"{r['malicious'] / r['trainers']:.1%}" if r["malicious"] else "-",
            _starved(last.get("load", [])), round(last.get("imbalance_max_mean", float("nan")), 2),
            sum(x["true_flags"] for x in r["rounds"]), sum(x["false_flags"] for x in r["rounds"]),
            f"{len(set(r['slashed']) & set(r['cheaters']))}/{r['malicious']}", _cheater_rounds(r) if r["malicious"] else "-",
            len(r["honest_slashed"]),
        ])  # fmt: skip
    return Table(
        "Training under attack (MNIST-1D, 8 experts, top-2; test accuracy of the registered model)",
        ["malicious trainers", "mode", "acc. before", "acc. final", "cheaters' experts' load", "their fair share",
         "experts starved (final)", "load max/mean (final)", "flags on cheaters", "flags on honest", "cheaters slashed",
         "rounds trained by cheaters", "honest slashed"],
        rows,
        "Load: fraction of the routing slots of the test split per expert. Cheaters' experts' load is the mean over "
        "the rounds they trained; starved experts get under 1% of the slots. Flags count trainer-rounds flagged by "
        "screening (verified mode only); flags on honest trainers are false positives. Chance accuracy is 0.1.",
    )  # fmt: skip


def _figures(records: list[dict], out_dir: Path) -> list[Figure]:
    from .plots import pyplot, save

    plt = pyplot()
    figures = []
    for key, ylabel, name, caption in [
        ("accuracy", "test accuracy", "training_attack_accuracy", "Test accuracy of the registered model after each training round"),
        ("starved", "experts with < 1% of the load", "training_attack_starved", "Experts the gate has given up on (under 1% of the routing slots) after each round"),
        ("imbalance_max_mean", "expert load max / mean", "training_attack_imbalance", "Expert load imbalance (max/mean of the routing fraction) after each round"),
    ]:  # fmt: skip
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for r in records:
            xs = [0] + [x["round"] for x in r["rounds"]]
            if key == "starved":
                ys = [_starved(r["initial_load"])] + [_starved(x["load"]) for x in r["rounds"]]
            else:
                first = r["initial_accuracy"] if key == "accuracy" else _max_mean(r["initial_load"])
                ys = [first] + [x[key] for x in r["rounds"]]
            style = "-" if r["mode"] == "verified" else "--"
            ax.plot(xs, ys, style, marker="o", label=_label(r))
            for x in r["rounds"]:
                if x["dropped"]:
                    ax.axvline(x["round"], color="#999999", lw=0.8, ls=":")
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        path, rel = figure_path(out_dir, f"{name}.png")
        save(fig, path)
        figures.append(Figure(rel, caption + " (dashed: traditional, solid: verified; dotted lines: a cheater dropped)."))
    return figures


def _max_mean(load: list[float]) -> float:
    values = np.asarray(load)
    return float(values.max() / values.mean())


def _findings(records: list[dict]) -> list[str]:
    findings = []
    by = {(r["malicious"], r["mode"]): r for r in records}
    clean = by.get((0, "traditional")) or by.get((0, "verified"))
    for r in records:
        if not r["rounds"]:
            continue
        last = r["rounds"][-1]
        text = (f"{_label(r)}: test accuracy {r['initial_accuracy']:.1%} -> {last['accuracy']:.1%} after "
                f"{len(r['rounds'])} rounds; {_starved(last['load'])} of {len(last['load'])} experts starved at the end")  # fmt: skip
        if r["malicious"] and r["mode"] == "traditional":
            text += (f"; the gate routed {_cheater_share(r):.1%} of the slots to the cheaters' experts "
                     f"(their fair share: {r['malicious'] / r['trainers']:.1%}): it learns to avoid them, and their capacity is lost")  # fmt: skip
        if r["mode"] == "verified":
            tp = sum(x["true_flags"] for x in r["rounds"])
            fp = sum(x["false_flags"] for x in r["rounds"])
            honest_rounds = sum(1 for x in r["rounds"] for s in x["stats"] if s["node"] not in r["cheaters"])
            cheat_rounds = sum(1 for x in r["rounds"] for s in x["stats"] if s["node"] in r["cheaters"])
            text += (f"; screening flagged {tp} of {cheat_rounds} cheater trainer-rounds and {fp} of {honest_rounds} honest "
                     f"ones (false positives); {len(set(r['slashed']) & set(r['cheaters']))}/{r['malicious']} cheaters slashed"
                     + (f", the last of them dropped after training {_cheater_rounds(r)} of {len(r['rounds'])} rounds" if r["malicious"] and set(r["slashed"]) >= set(r["cheaters"]) else "")
                     + f", {len(r['blacklisted'])} blacklisted, {len(r['honest_slashed'])} honest trainers slashed")  # fmt: skip
        findings.append(text + ".")
    for malicious in sorted({m for m, _ in by if m}):
        t, v = by.get((malicious, "traditional")), by.get((malicious, "verified"))
        if t and v and t["rounds"] and v["rounds"]:
            diff = v["rounds"][-1]["accuracy"] - t["rounds"][-1]["accuracy"]
            text = (f"With {malicious} malicious trainers, verified training ends {abs(diff):.1%} "
                    f"{'above' if diff >= 0 else 'below'} traditional training")  # fmt: skip
            if clean and clean["rounds"]:
                gap = clean["rounds"][-1]["accuracy"] - v["rounds"][-1]["accuracy"]
                text += (f" and {gap:.1%} below clean training: the cheaters' experts are rolled back to their "
                         "initial weights, which the gate has learned to avoid, so they regain load only slowly")  # fmt: skip
            findings.append(text + ".")
    return findings
