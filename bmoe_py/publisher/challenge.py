"""Taking an outvoted host to court: the publisher's side of `redundant:r` (DESIGN.md 7, protocol 4 and 5).

The publisher holds the outvoted host's signed receipt and the request's inputs and outputs. That is enough to make
the host's answer a commitment on chain without the host's help: pin the one-request bundle (protocol 9: its root is
the receipt's root), `postReceipt` it, then challenge one of the wrong tokens with the FraudProof game. The game
itself (respond, prove the first wrong row, timeouts, claims) is the validator's `FraudProofDriver`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..crypto.commitments import Commitment
from ..protocol.bundle import BundleToken, WindowBundle
from .remote import Answer

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["ChallengeOutcome", "challenge_answer", "fraud_proof_driver", "post_receipt"]

log = logging.getLogger("bmoe.publisher.challenge")


@dataclass(frozen=True)
class ChallengeOutcome:
    dispute_id: int
    outcome: str | None  # "fraud" | "honest" | None (not settled in time)
    slashed: int  # wei taken from the node


def post_receipt(chain: Chain, ipfs: IpfsClient, answer: Answer) -> tuple[Commitment, WindowBundle]:
    """Makes a verified answer a (never paid, challengeable) commitment on chain; returns it and its bundle."""
    receipt = answer.response.receipt
    bundle = WindowBundle.of_requests(
        receipt.node, receipt.task_id, receipt.model_id, receipt.expert_index, receipt.expert_version,
        [(bytes(receipt.request_id), np.asarray(answer.request.tokens), np.asarray(answer.outputs))],
    )  # fmt: skip
    if bundle.root != bytes(receipt.root):  # cannot happen for an Answer (verified), but a wrong bundle costs gas
        raise ValueError("the bundle of the answer does not have the receipt's root")
    cid = ipfs.add_bytes(bundle.encode(), name="receipt-bundle")
    tx = chain.send(chain.ledger.functions.postReceipt(receipt.as_tuple(), bytes(answer.response.signature), cid))
    event = chain.events(tx, "ResultLedger", "CommitmentPosted")[0]
    return Commitment.from_event(event["commitment"]), bundle


def challenge_answer(
    chain: Chain, ipfs: IpfsClient, answer: Answer, token: int, *, settle_timeout: float = 120.0, driver: Any = None
) -> ChallengeOutcome:
    """Posts `answer`'s receipt, challenges its token `token` and drives the dispute until it ends or times out."""
    commitment, bundle = post_receipt(chain, ipfs, answer)
    driver = driver or fraud_proof_driver(chain, ipfs)
    dispute_id = driver.challenge(commitment, bundle.token(token))
    log.info("challenged host %s on token %d of request 0x%s: dispute %d", answer.host, token,
             bytes(answer.request.request_id).hex()[:12], dispute_id)  # fmt: skip
    status = driver.settle(dispute_id, settle_timeout)
    slashed = _slashed_in(chain, dispute_id) if status.outcome == "fraud" else 0
    return ChallengeOutcome(dispute_id, status.outcome, slashed)


def _slashed_in(chain: Chain, dispute_id: int) -> int:
    logs = chain.fraud_proof.events.Resolved().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
    return int(logs[-1]["args"]["slashed"]) if logs else 0


def fraud_proof_driver(chain: Chain, ipfs: IpfsClient) -> Any:
    """The validator's `FraudProofDriver` (bmoe_py.validator.fraud), or the minimal one below until it exists."""
    try:
        from ..validator.fraud import FraudProofDriver
    except ImportError:
        return MinimalFraudProofDriver(chain, ipfs)
    return FraudProofDriver(chain, ipfs)


# --------------------------------------------------------------------------------------------------------------
# A minimal driver with the interface of the validator's FraudProofDriver, for the publisher's own disputes.


@dataclass(frozen=True)
class DisputeStatus:
    phase: int
    outcome: str | None
    done: bool


_AWAITING_RESPONSE, _AWAITING_PROOF, _NODE_SLASHED, _CHALLENGER_LOST = 1, 2, 3, 4


class MinimalFraudProofDriver:
    """challenge -> wait for the node's activations -> prove the first wrong row (or time the node out)."""

    def __init__(self, chain: Chain, ipfs: IpfsClient) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self._experts: dict[tuple[int, int, int], Any] = {}
        self._tokens: dict[int, BundleToken] = {}

    def challenge(self, commitment: Commitment, token: BundleToken) -> int:
        fp = self.chain.fraud_proof
        bond = self.chain.call(fp.functions.bond())
        tx = self.chain.send(
            fp.functions.challenge(commitment.as_tuple(), token.leaf.as_tuple(), [bytes(p) for p in token.proof],
                                   np.asarray(token.input).tobytes()),
            value=bond,
        )  # fmt: skip
        dispute_id = int(self.chain.events(tx, "FraudProof", "Challenged")[0]["disputeId"])
        self._tokens[dispute_id] = token
        return dispute_id

    def step(self, dispute_id: int) -> DisputeStatus:
        fp = self.chain.fraud_proof
        dispute = self.chain.call(fp.functions.dispute(dispute_id))
        phase, deadline = int(dispute[6]), int(dispute[7])
        now = self.chain.w3.eth.get_block("latest")["timestamp"]
        if phase == _NODE_SLASHED:
            return DisputeStatus(phase, "fraud", True)
        if phase == _CHALLENGER_LOST:
            return DisputeStatus(phase, "honest", True)
        if now > deadline:
            self.chain.send(fp.functions.timeout(dispute_id))
            return self.step(dispute_id)
        if phase == _AWAITING_PROOF and self._prove(dispute_id, dispute):
            return self.step(dispute_id)
        return DisputeStatus(phase, None, False)

    def settle(self, dispute_id: int, timeout: float) -> DisputeStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = self.step(dispute_id)
            if status.done or time.monotonic() > deadline:
                return status
            time.sleep(0.5)

    def _prove(self, dispute_id: int, dispute: Any) -> bool:
        from ..crypto.leaves import weights_tree
        from ..model.int8_ref import layer_forward
        from .fetch import load_expert_from_chain

        model_id, expert, version = int(dispute[3]), int(dispute[4]), int(dispute[5])
        key = (model_id, expert, version)
        if key not in self._experts:
            layers = load_expert_from_chain(self.chain, self.ipfs, model_id, expert, version).layers
            self._experts[key] = (layers, weights_tree(layers))
        layers, tree = self._experts[key]
        logs = self.chain.fraud_proof.events.Responded().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
        activations = [bytes(a) for a in logs[-1]["args"]["activations"]]
        layer_input = np.asarray(self._tokens[dispute_id].input, dtype=np.int8)
        for index, layer in enumerate(layers):  # the first layer whose revealed output is not its input's image
            claimed = np.frombuffer(activations[index], dtype=np.int8)
            honest = layer_forward(layer, layer_input[None, :])[0]
            wrong = np.flatnonzero(honest != claimed)
            if wrong.size:
                row_index = int(wrong[0])
                row = tree.row(index, row_index)
                self.chain.send(self.chain.fraud_proof.functions.prove(
                    dispute_id, index, row_index, layer_input.tobytes(), activations[index], row.weights, row.bias,
                    [bytes(p) for p in tree.proof(index, row_index)],
                ))  # fmt: skip
                return True
            layer_input = claimed
        # Every row checks out: the node's answer was right after all; let the proof window lapse (bond lost).
        log.warning("dispute %d: the node's activations are all correct; not proving", dispute_id)
        return False
