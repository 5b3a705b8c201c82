"""Verifying training windows (docs/protocol.md 11): replay a trainer's recorded steps from the round's base version
and compare a sample of them.

A training window (`bmoe-train-window/1`) is committed like an inference window, one leaf per step. The validator
replays every step in order from the base version (a step's parameters depend on all the steps before it, which is
cheap for our experts), but compares only its sampled steps: ceil(p * S) drawn with the operating system's CSPRNG, or
all S when the Screening contract has flagged the node for the model (priority sampling). A step is wrong when its
returned outputs or input gradients are outside the model's tolerance of the replayed ones; the last step is also
wrong when the registered next version is not the replayed final parameters (`records.judge_step` is the rule, and
what committee members run on a challenged step).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..chain.client import TransactionReverted
from ..chain.manifest import ManifestError
from ..chain.screening import screening_record
from ..crypto.commitments import Commitment
from ..crypto.leaves import TokenLeaf
from ..training.records import (
    TrainBundleError,
    TrainWindowBundle,
    judge_step,
    replay,
    step_verdict,
)
from .checker import BadBundle

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..model.moe import Expert
    from ..storage.client import IpfsClient

__all__ = ["StepToken", "TrainingVerifier"]


@dataclass(frozen=True)
class StepToken:
    """What a challenge of one step needs: its leaf and the leaf's proof in the window's tree."""

    position: int
    leaf: TokenLeaf
    proof: list[bytes]


class TrainingVerifier:
    """Checks the training windows of one Float model against its registered versions."""

    def __init__(self, chain: Chain, ipfs: IpfsClient, model_id: int, tolerance: int, *, ipfs_timeout: float = 30.0):
        self.chain = chain
        self.ipfs = ipfs
        self.model_id = model_id
        self.tolerance = tolerance
        self.ipfs_timeout = ipfs_timeout
        self._versions: dict[tuple[int, int], Expert | None] = {}

    def decode(self, commitment: Commitment, data: bytes) -> TrainWindowBundle:
        """The window's bundle, checked against its commitment (ids, token count, root)."""
        try:
            bundle = TrainWindowBundle.decode(data)
        except TrainBundleError as exc:
            raise BadBundle(str(exc)) from None
        c = commitment
        expected = (c.node.lower(), c.task_id, self.model_id, c.expert_index, c.expert_version, c.token_count)
        actual = (bundle.node.lower(), bundle.task_id, bundle.model_id, bundle.expert_index, bundle.expert_version,
                  bundle.token_count)  # fmt: skip
        if actual != expected:
            raise BadBundle(f"training bundle metadata {actual} does not match the commitment {expected}")
        if bundle.root != c.root:
            raise BadBundle(f"training bundle root 0x{bundle.root.hex()} is not the committed 0x{c.root.hex()}")
        return bundle

    def flagged(self, node: str) -> bool:
        """Whether screening has flagged `node` for this model on chain (then every step is checked)."""
        try:
            return screening_record(self.chain, self.model_id, node).flag_count > 0
        except ManifestError:  # a deployment from before Screening: nobody is flagged
            return False

    def check(self, bundle: TrainWindowBundle, positions: list[int]) -> dict[int, bool]:
        """position -> step correct, for `positions`, from one replay of the window up to the last of them
        (`records.judge_step` would replay from the start for every position; both apply `records.step_verdict`)."""
        wanted = set(positions)
        last = len(bundle) - 1
        upto = max(wanted)
        result: dict[int, bool] = {}
        expert = self._base(bundle)
        malformed = self._first_malformed(bundle, expert)
        if malformed is not None and malformed <= upto:
            # The replay cannot go past a step of the wrong shape: that step is wrong, the later ones unverifiable
            # (wrong as well: the protocol's replay is undefined for them).
            upto = malformed - 1
            result = {p: False for p in wanted if p >= malformed}
        for replayed in replay(expert, bundle.steps, upto=upto) if upto >= 0 else ():
            if replayed.step not in wanted:
                continue
            registered = self._next_checkpoint(bundle) if replayed.step == last else None
            result[replayed.step] = not step_verdict(bundle, replayed, self.tolerance, expert, registered).fraud
        return result

    def correct(self, bundle: TrainWindowBundle, position: int) -> bool:
        """A committee member's judgement of one challenged step (`records.judge_step`)."""
        expert = self._base(bundle)
        malformed = self._first_malformed(bundle, expert)
        if malformed is not None and malformed <= position:
            return False
        next_checkpoint = self._next_checkpoint(bundle) if position == len(bundle) - 1 else None
        if position == len(bundle) - 1 and next_checkpoint is None:
            return False  # the window claims a next version that the registry does not hold
        return not judge_step(expert, bundle, position, self.tolerance, next_checkpoint).fraud

    def token(self, bundle: TrainWindowBundle, position: int) -> StepToken:
        return StepToken(position, bundle.leaf(position), bundle.proof(position))

    # ------------------------------------------------------------------------------------------------ internals

    def _next_checkpoint(self, bundle: TrainWindowBundle) -> Expert | None:
        """The registered version the window names as its result; None when it is not newer than the base version
        or not registered (then the last step is wrong)."""
        if bundle.next_version <= bundle.expert_version:
            return None
        return self._version(bundle.expert_index, bundle.next_version)

    def _base(self, bundle: TrainWindowBundle) -> Expert:
        base = self._version(bundle.expert_index, bundle.expert_version)
        if base is None:  # the ledger only accepts commitments of published versions
            raise BadBundle(f"base version {bundle.expert_version} of expert {bundle.expert_index} is not registered")
        return copy.deepcopy(base)  # the replay updates its expert in place

    def _version(self, expert_index: int, version: int) -> Expert | None:
        """A registered float expert version, verified; None when the registry has no such version. Fetch errors
        propagate: the validator's next pass retries."""
        key = (expert_index, version)
        if key not in self._versions:
            from ..publisher.fetch import NotPublished, load_float_expert_from_chain

            try:
                loaded = load_float_expert_from_chain(
                    self.chain, self.ipfs, self.model_id, expert_index, version, timeout=self.ipfs_timeout
                )
            except NotPublished:
                return None
            except TransactionReverted as exc:
                if exc.name not in ("UnknownVersion", "UnknownExpert"):
                    raise
                return None
            self._versions[key] = loaded.expert
        return self._versions[key]

    @staticmethod
    def _first_malformed(bundle: TrainWindowBundle, expert: Expert) -> int | None:
        """The first step whose tensors do not fit the expert's dimensions."""
        d_in, d_out = expert.fc1.in_features, expert.fc2.out_features
        for s in bundle.steps:
            if s.inputs.shape[1] != d_in or s.outputs.shape[1] != d_out:
                return s.step
        return None
