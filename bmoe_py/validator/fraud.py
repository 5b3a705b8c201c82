"""Driving an exact fraud proof (docs/protocol.md 5) from the challenger's side, to its end.

    driver = FraudProofDriver(chain, ipfs)
    dispute_id = driver.challenge(commitment, bundle.token(i))   # sends the bond
    status = driver.settle(dispute_id, timeout=60)                 # prove / timeout / claim until done

`step` is idempotent: it reads the dispute from the chain and does the one thing due now, so a validator can call it
from a loop, after a restart, or from several processes without double actions (a transaction that lost a race
reverts before it is sent and is ignored). Everything it needs (the token input, the node's activations) is read back
from the FraudProof events, so the driver keeps no state beyond a cache of verified expert weights.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from ..chain.client import TransactionReverted
from ..crypto.commitments import Commitment
from ..crypto.leaves import WeightsTree
from ..model.int8_ref import IntLayer, layer_forward

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..protocol.bundle import BundleToken
    from ..storage.client import IpfsClient

__all__ = ["DisputeStatus", "FraudProofDriver", "Phase", "WrongRow", "first_wrong_row"]

# Reverts that mean "someone else already did this step" or "not yet": the next step() reads the new state.
_RACES = {"WrongPhase", "DeadlinePassed", "DeadlineNotReached", "NothingToClaim"}


class Phase(IntEnum):
    """`IFraudProof.Phase`."""

    NONE = 0
    AWAITING_RESPONSE = 1
    AWAITING_PROOF = 2
    NODE_SLASHED = 3
    CHALLENGER_LOST = 4


@dataclass(frozen=True)
class DisputeStatus:
    dispute_id: int
    phase: str  # "awaiting_response" | "awaiting_proof" | "node_slashed" | "challenger_lost"
    outcome: str | None  # "fraud" | "honest" once resolved
    done: bool  # resolved, and what this driver's key could claim from FraudProof has been claimed


@dataclass(frozen=True)
class WrongRow:
    layer: int
    row: int
    claimed: int
    recomputed: int


def first_wrong_row(layers: list[IntLayer], token_input: np.ndarray, activations: list[np.ndarray]) -> WrongRow | None:
    """The first (layer, row) whose revealed output differs from its recomputation from the revealed input.

    Each layer is checked against the node's own previous activation, not against our re-execution from the start:
    the contract proves one layer at a time from the hashes the node committed to, so the provable row is the first
    layer whose output does not follow from its (revealed) input.
    """
    x = np.asarray(token_input, dtype=np.int8)
    for index, (layer, revealed) in enumerate(zip(layers, activations)):
        expected = layer_forward(layer, x)
        wrong = np.flatnonzero(expected != revealed)
        if wrong.size:
            row = int(wrong[0])
            return WrongRow(index, row, int(revealed[row]), int(expected[row]))
        x = revealed
    return None


class FraudProofDriver:
    """Challenges tokens of exact commitments and carries the disputes to their end with the chain's key."""

    def __init__(self, chain: Chain, ipfs: IpfsClient, *, ipfs_timeout: float | None = 60.0) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self.ipfs_timeout = ipfs_timeout
        self._experts: dict[tuple[int, int, int], tuple[list[IntLayer], WeightsTree]] = {}

    # ------------------------------------------------------------------------------------------------ actions

    def challenge(self, commitment: Commitment, token: BundleToken) -> int:
        """Opens a dispute on one token of `commitment` (sends the bond); returns its id."""
        fp = self.chain.fraud_proof
        bond = self.chain.call(fp.functions.bond())
        receipt = self.chain.send(
            fp.functions.challenge(
                commitment.as_tuple(),
                token.leaf.as_tuple(),
                [bytes(p) for p in token.proof],
                np.asarray(token.input, dtype=np.int8).tobytes(),
            ),
            value=bond,
        )
        return int(self.chain.events(receipt, "FraudProof", "Challenged")[0]["disputeId"])

    def step(self, dispute_id: int) -> DisputeStatus:
        """Does what is due now for the dispute (prove, timeout, claim) and returns its state afterwards."""
        dispute = self._dispute(dispute_id)
        phase = Phase(dispute["phase"])
        if phase is Phase.NONE:
            raise ValueError(f"FraudProof has no dispute {dispute_id}")
        if phase is Phase.AWAITING_RESPONSE:
            if self._deadline_passed(dispute["deadline"]):
                self._try(self.chain.fraud_proof.functions.timeout(dispute_id))
        elif phase is Phase.AWAITING_PROOF:
            if self._deadline_passed(dispute["deadline"]):
                self._try(self.chain.fraud_proof.functions.timeout(dispute_id))
            elif self._is_challenger(dispute):
                self._prove(dispute_id, dispute)
        if self._dispute(dispute_id)["phase"] in (Phase.NODE_SLASHED, Phase.CHALLENGER_LOST):
            self._claim()  # in the same step as the resolution: one call can finish a dispute
        return self.status(dispute_id)

    def settle(self, dispute_id: int, timeout: float, poll: float = 0.5) -> DisputeStatus:
        """Calls `step` until the dispute is done or `timeout` seconds passed; returns the last status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.step(dispute_id)
            if status.done or time.monotonic() >= deadline:
                return status
            time.sleep(poll)

    def status(self, dispute_id: int) -> DisputeStatus:
        phase = Phase(self._dispute(dispute_id)["phase"])
        outcome = {Phase.NODE_SLASHED: "fraud", Phase.CHALLENGER_LOST: "honest"}.get(phase)
        done = outcome is not None and self._claimable() == 0
        return DisputeStatus(dispute_id, phase.name.lower(), outcome, done)

    # ------------------------------------------------------------------------------------------------ internals

    def _prove(self, dispute_id: int, dispute: dict) -> None:
        layers, tree = self.expert(int(dispute["modelId"]), int(dispute["expertIndex"]), int(dispute["expertVersion"]))
        token_input = self._token_input(dispute_id)
        activations = self._activations(dispute_id)
        wrong = first_wrong_row(layers, token_input, activations)
        # An honest answer: prove any row; it matches, and the bond goes to the node now rather than after the
        # proof window (the outcome is the same, the node's stake is unlocked sooner).
        layer, row = (wrong.layer, wrong.row) if wrong else (0, 0)
        layer_input = token_input if layer == 0 else activations[layer - 1]
        weights = tree.row(layer, row)
        self._try(
            self.chain.fraud_proof.functions.prove(
                dispute_id, layer, row, np.asarray(layer_input, np.int8).tobytes(), activations[layer].tobytes(),
                bytes(weights.weights), int(weights.bias), [bytes(p) for p in tree.proof(layer, row)],
            )  # fmt: skip
        )

    def expert(self, model_id: int, expert_index: int, version: int) -> tuple[list[IntLayer], WeightsTree]:
        """The verified layers of an expert version and their weights tree (fetched once)."""
        key = (model_id, expert_index, version)
        if key not in self._experts:
            from ..publisher.fetch import load_expert_from_chain

            loaded = load_expert_from_chain(self.chain, self.ipfs, model_id, expert_index, version, timeout=self.ipfs_timeout)
            self._experts[key] = (loaded.layers, WeightsTree(loaded.layers))
        return self._experts[key]

    def _dispute(self, dispute_id: int) -> dict:
        raw = self.chain.call(self.chain.fraud_proof.functions.dispute(dispute_id))
        names = ("commitmentId", "challenger", "node", "modelId", "expertIndex", "expertVersion", "phase", "deadline",
                 "bond", "inputHash", "outputHash")  # fmt: skip
        return dict(zip(names, raw))

    def _is_challenger(self, dispute: dict) -> bool:
        return self.chain.account is not None and dispute["challenger"].lower() == self.chain.address.lower()

    def _deadline_passed(self, deadline: int) -> bool:
        # The next block's timestamp is at least the latest one + 1, so "latest >= deadline" means the next
        # transaction sees block.timestamp > deadline. Chain time, not wall-clock: tests travel in time.
        return int(self.chain.w3.eth.get_block("latest")["timestamp"]) >= int(deadline)

    def _token_input(self, dispute_id: int) -> np.ndarray:
        logs = self.chain.fraud_proof.events.Challenged().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
        return np.frombuffer(bytes(logs[-1]["args"]["input"]), dtype=np.int8)

    def _activations(self, dispute_id: int) -> list[np.ndarray]:
        logs = self.chain.fraud_proof.events.Responded().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
        return [np.frombuffer(bytes(a), dtype=np.int8) for a in logs[-1]["args"]["activations"]]

    def _claimable(self) -> int:
        if self.chain.account is None:
            return 0
        return int(self.chain.call(self.chain.fraud_proof.functions.claimable(self.chain.address)))

    def _claim(self) -> None:
        if self._claimable() > 0:
            self._try(self.chain.fraud_proof.functions.claim())

    def _try(self, fn) -> None:
        try:
            self.chain.send(fn)
        except TransactionReverted as exc:
            if exc.name not in _RACES:
                raise
