"""Taking an outvoted host to court: the publisher's side of `redundant:r` (DESIGN.md 7, protocol 4 and 5).

The publisher holds the outvoted host's signed receipt and the request's inputs and outputs. That is enough to make
the host's answer a commitment on chain without the host's help: pin the one-request bundle (protocol 9: its root is
the receipt's root), `postReceipt` it, then challenge one of the wrong tokens with the FraudProof game. The game
itself (respond, prove the first wrong row, timeouts, claims) is the validator's `FraudProofDriver`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..crypto.commitments import Commitment
from ..protocol.bundle import WindowBundle
from ..validator.fraud import FraudProofDriver
from .remote import Answer

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["ChallengeOutcome", "challenge_answer", "post_receipt"]

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
    chain: Chain, ipfs: IpfsClient, answer: Answer, token: int, *, settle_timeout: float = 120.0, driver: FraudProofDriver | None = None
) -> ChallengeOutcome:
    """Posts `answer`'s receipt, challenges its token `token` and drives the dispute until it ends or times out."""
    commitment, bundle = post_receipt(chain, ipfs, answer)
    driver = driver or FraudProofDriver(chain, ipfs)
    dispute_id = driver.challenge(commitment, bundle.token(token))
    log.info("challenged host %s on token %d of request 0x%s: dispute %d", answer.host, token,
             bytes(answer.request.request_id).hex()[:12], dispute_id)  # fmt: skip
    status = driver.settle(dispute_id, settle_timeout)
    slashed = _slashed_in(chain, dispute_id) if status.outcome == "fraud" else 0
    return ChallengeOutcome(dispute_id, status.outcome, slashed)


def _slashed_in(chain: Chain, dispute_id: int) -> int:
    logs = chain.fraud_proof.events.Resolved().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
    return int(logs[-1]["args"]["slashed"]) if logs else 0
