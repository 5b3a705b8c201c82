"""The parts every experiment (and `make demo`) builds on: a published model with honest edge nodes serving it,
cheating nodes that come and go, validators, inference passes through the real publisher runtime, and what the
chain says happened (slashes, disputes, gas).

    bed = testbed(net, "mnist1d", setting="fast")          # publishes once per network, starts the honest nodes
    cheaters = bed.start_cheaters(1, "signflip", seed=0)     # fresh keys and processes, hosting every expert
    with bed.session("redundant:3") as session:
        report = session.run(bed.x, bed.y)
    bed.stop(cheaters)

A testbed is cached on the LocalNetwork (`net.shared`), so experiments run one after the other in `bmoe experiment
all` (or in one test module) share the model and its honest nodes: starting processes is the slow part.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .localnet import LocalNetwork, Process

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..publisher.runtime import InferenceSession
    from ..storage.client import IpfsClient

__all__ = [
    "MODELS",
    "ModelSpec",
    "Testbed",
    "frauds_proven",
    "gas_used",
    "seconds_to_slash",
    "slashed_stake",
    "testbed",
]

ETHER = 10**18
SESSION_FUNDS = 500 * ETHER  # escrows and challenge bonds of a testbed's sessions
WINDOW_SECONDS = 1.0  # nodes commit a window this long after its first request: disputes start soon after a pass


@dataclass(frozen=True)
class ModelSpec:
    """How an experiment model is trained and published (`bmoe model publish` options)."""

    dataset: str
    experts: int
    patch_size: int
    patch_stride: int
    epochs: dict[str, int]  # per setting

    def publish_options(self, setting: str, challenge_window: int) -> list[str]:
        return [
            "--dataset", self.dataset, "--epochs", str(self.epochs[setting]), "--experts", str(self.experts),
            "--patch-size", str(self.patch_size), "--patch-stride", str(self.patch_stride),
            "--challenge-window", str(challenge_window),
        ]  # fmt: skip


MODELS = {
    # 9 overlapping tokens of 8 values per sample, 8 experts, top-2 (the demo's model)
    "mnist1d": ModelSpec("mnist1d", experts=8, patch_size=8, patch_stride=4, epochs={"fast": 3, "full": 12}),
    # 8x8 digits as 7 overlapping tokens of 16 pixels (two image rows each), 4 experts, top-2
    "digits": ModelSpec("digits", experts=4, patch_size=16, patch_stride=8, epochs={"fast": 10, "full": 30}),
}


@dataclass
class Testbed:
    net: LocalNetwork
    dataset: str
    setting: str
    model_id: int
    published: dict[str, Any]  # what `bmoe model publish --json` printed
    experts: list[int]
    honest: list[Process]
    chain: Chain  # the client of this testbed's sessions (its own key: testbeds may run side by side)
    ipfs: IpfsClient
    x: np.ndarray  # the test split the model was evaluated on when published
    y: np.ndarray
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ processes

    def _name(self, role: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{self.dataset}-{role}-{self._counter}"

    def start_honest(self, count: int) -> list[Process]:
        started = self._start_many([(self._name("honest"), []) for _ in range(count)])
        self.honest.extend(started)
        return started

    def start_cheaters(
        self, count: int, attack: str, *, seed: int = 0, fraction: float = 1.0, strength: float = 1.0
    ) -> list[Process]:
        """`count` fresh cheating nodes (fresh keys and stake), each hosting every expert, each with its own attack
        seed (so two `gaussian` cheaters do not agree on their noise)."""
        specs = [
            (self._name(f"cheat-{attack}"), [
                "--attack", attack, "--attack-fraction", str(fraction), "--attack-strength", str(strength),
                "--attack-seed", str(1000 * seed + i),
            ])
            for i in range(count)
        ]  # fmt: skip
        return self._start_many(specs)

    def _start_many(self, specs: Sequence[tuple[str, list[str]]]) -> list[Process]:
        """Starts edge nodes concurrently (each spends seconds importing torch, staking and registering)."""
        if not specs:
            return []
        extra = ["--window-seconds", str(WINDOW_SECONDS)]
        with ThreadPoolExecutor(len(specs)) as pool:
            futures = [pool.submit(self.net.start_edge, name, self.model_id, self.experts, extra=extra + more) for name, more in specs]
            return [f.result() for f in futures]

    def start_validators(self, count: int, rate: float, from_block: int | None = None) -> list[Process]:
        from_block = self.chain.w3.eth.block_number if from_block is None else from_block
        extra = ["--sample-rate", str(rate), "--from-block", str(from_block), "--poll", "0.5"]
        with ThreadPoolExecutor(max(1, count)) as pool:
            futures = [pool.submit(self.net.start_validator, self._name("validator"), self.model_id, extra=extra) for _ in range(count)]
            return [f.result() for f in futures]

    def stop(self, processes: Iterable[Process]) -> None:
        for process in list(processes):
            self.net.stop(process)

    # ------------------------------------------------------------------ inference

    def session(self, policy: str, **kwargs: Any) -> InferenceSession:
        from ..publisher.runtime import InferenceSession

        kwargs.setdefault("price_per_token", 10**9)
        kwargs.setdefault("escrow", ETHER // 10)
        return InferenceSession(self.chain, self.ipfs, self.model_id, policy, **kwargs)

    def run_pass(self, session: InferenceSession, x: np.ndarray, y: np.ndarray, batch_size: int = 128) -> dict[str, Any]:
        """One pass over (x, y) in `session`: the TaskReport as a dict (without the predictions), or, when the
        publisher could not get a trustworthy answer (ExpertUnavailable: no host, no majority), accuracy None and
        the reason under "error"."""
        from ..publisher.hosts import ExpertUnavailable

        started = time.monotonic()
        try:
            report = session.run(x, y, batch_size=batch_size).to_dict()
        except ExpertUnavailable as exc:
            return {"accuracy": None, "error": str(exc)[:300], "seconds": time.monotonic() - started, "tokens": 0}
        # the predictions themselves are long; their digest is enough to tell whether two passes agree exactly
        predictions = np.asarray(report.pop("predictions"), dtype=np.int64)
        report["predictions_digest"] = hashlib.sha256(predictions.tobytes()).hexdigest()[:16]
        report.pop("dispute_records", None)
        return report

    def exact_reference(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The published model whole in this process (every expert verified against the chain), nobody cheating:
        its accuracy and predictions digest, computed as `run_pass` computes them."""
        import torch

        from ..publisher.fetch import load_exact_model_from_chain

        model = load_exact_model_from_chain(self.chain, self.ipfs, self.model_id)
        inputs = torch.as_tensor(np.asarray(x, dtype=np.float32))
        predictions = torch.cat([model(inputs[i : i + 512]).logits.argmax(-1) for i in range(0, len(inputs), 512)])
        accuracy = float((predictions == torch.as_tensor(np.asarray(y)).long()).float().mean())
        digest = hashlib.sha256(predictions.numpy().astype(np.int64).tobytes()).hexdigest()[:16]
        return {"accuracy": accuracy, "predictions_digest": digest}

    def subset(self, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """`samples` test samples drawn with `seed` (all of them when there are fewer)."""
        if samples >= len(self.x):
            return self.x, self.y
        pick = np.random.default_rng(seed).choice(len(self.x), samples, replace=False)
        return self.x[pick], self.y[pick]

    def wait_for_slashes(self, accounts: Sequence[str], from_block: int, timeout: float, say=None) -> int:
        """Waits until every account in `accounts` was slashed since `from_block`, or `timeout`; how many were."""
        deadline = time.monotonic() + timeout
        while True:
            slashed = slashed_stake(self.chain, accounts, from_block)[1]
            if slashed >= len(accounts) or time.monotonic() >= deadline:
                return slashed
            if say:
                say(f"    waiting for disputes: {slashed}/{len(accounts)} cheaters slashed")
            time.sleep(1.0)

    def block(self) -> int:
        return int(self.chain.w3.eth.block_number)


def testbed(net: LocalNetwork, dataset: str, setting: str, *, honest: int = 3, challenge_window: int = 60, say=None) -> Testbed:
    """The network's testbed of `dataset` (published and served by `honest` honest nodes), made on first use."""
    key = f"testbed:{dataset}:{setting}"
    bed: Testbed | None = net.shared.get(key)
    say = say or net.say
    if bed is None:
        from ..model.data import load_dataset
        from ..storage.client import IpfsClient

        spec = MODELS[dataset]
        say(f"publishing the {dataset} model ({spec.experts} experts, {spec.epochs[setting]} epochs)")
        published = net.publish_model(spec.publish_options(setting, challenge_window))
        data = load_dataset(dataset)
        bed = Testbed(
            net=net, dataset=dataset, setting=setting, model_id=int(published["model_id"]), published=published,
            experts=list(range(len(published["experts"]))), honest=[], chain=net.connect(net.new_key(fund=SESSION_FUNDS)),
            ipfs=IpfsClient(net.ipfs_api, timeout=30), x=data.x_test.numpy(), y=data.y_test.numpy(),
        )  # fmt: skip
        say(f"model {bed.model_id}: exact int8 test accuracy {published['exact_accuracy']:.2%}")
        net.shared[key] = bed
    if len(bed.honest) < honest:
        say(f"starting {honest - len(bed.honest)} honest edge node(s) for the {dataset} model")
        bed.start_honest(honest - len(bed.honest))
    return bed


# ---------------------------------------------------------------------------------------------- what the chain says


def slashed_stake(chain: Chain, accounts: Sequence[str], from_block: int) -> tuple[int, int]:
    """(wei slashed from `accounts`, how many of them were slashed) since `from_block`, from Staking's events."""
    wanted = {a.lower() for a in accounts}
    total, hit = 0, set()
    for log in chain.staking.events.Slashed.get_logs(from_block=from_block):
        if log["args"]["account"].lower() in wanted:
            total += log["args"]["amount"]
            hit.add(log["args"]["account"].lower())
    return total, len(hit)


def seconds_to_slash(chain: Chain, accounts: Sequence[str], from_block: int) -> list[int]:
    """For each slashed account: block time of its Slashed event minus that of its first CommitmentPosted (a window
    it committed, or its receipt posted by the publisher)."""
    timestamp = lambda block: chain.w3.eth.get_block(block)["timestamp"]  # noqa: E731
    delays = []
    for account in accounts:
        slashes = chain.staking.events.Slashed.get_logs(from_block=from_block, argument_filters={"account": account})
        posts = chain.ledger.events.CommitmentPosted.get_logs(from_block=from_block, argument_filters={"node": account})
        if slashes and posts:
            delays.append(timestamp(slashes[0]["blockNumber"]) - timestamp(posts[0]["blockNumber"]))
    return delays


def frauds_proven(chain: Chain, from_block: int) -> int:
    """FraudProof disputes resolved as fraud since `from_block`."""
    return sum(1 for log in chain.fraud_proof.events.Resolved.get_logs(from_block=from_block) if log["args"]["fraud"])


def gas_used(chain: Chain, from_block: int, to_block: int) -> dict[str, int]:
    """Gas of every transaction mined in [from_block, to_block], per "Contract.function" ("total" is the sum)."""
    w3 = chain.w3
    names = _functions(chain)
    totals: dict[str, int] = {"total": 0}
    for number in range(from_block, to_block + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            gas = int(w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"])
            data = bytes(tx["input"])
            name = names.get(((tx["to"] or "").lower(), data[:4]), "transfer" if not data else "other")
            totals[name] = totals.get(name, 0) + gas
            totals["total"] += gas
    return totals


def _functions(chain: Chain) -> dict[tuple[str, bytes], str]:
    from eth_utils import function_abi_to_4byte_selector

    names: dict[tuple[str, bytes], str] = {}
    for contract_name, record in chain.manifest.contracts.items():
        for item in record.abi:
            if item.get("type") == "function":
                names[(record.address.lower(), function_abi_to_4byte_selector(item))] = f"{contract_name}.{item['name']}"
    return names
