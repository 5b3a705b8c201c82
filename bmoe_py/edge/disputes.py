"""Answering fraud-proof challenges against this node (docs/protocol.md 5) before the response deadline.

The node watches `FraudProof.Challenged` for disputes naming it, whether the challenged commitment is one it posted
or one posted from its receipt (`postReceipt`): it finds the leaf among the token leaves it stored for every
answered request and reveals the activations of every layer for that token. For a token it answered honestly
these are the kernel's; for one it manipulated (attack mode), every layer but the last is honest and the last is
the output it returned, since the revealed last layer must hash to the leaf's outputHash. (Silence loses at once;
this way the challenger has to find the bad row, which is exactly what the proof game is for.)
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..crypto.hashing import keccak256
from ._tx import tx_hash
from .executor import LoadedExecutor
from .store import EdgeStore

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = ["DisputeResponder"]

log = logging.getLogger("bmoe.edge")
_AWAITING_RESPONSE = 1  # IFraudProof.Phase
_CURSOR = "dispute_block"


class DisputeResponder:
    def __init__(self, chain: Chain, store: EdgeStore, executors: dict[int, LoadedExecutor], model_id: int) -> None:
        self.chain, self.store, self.executors, self.model_id = chain, store, executors, model_id
        if store.get_meta(_CURSOR) is None:  # first start: nothing before now can name this node's results
            store.set_meta(_CURSOR, str(chain.w3.eth.block_number))

    def tick(self) -> None:
        start, latest = int(self.store.get_meta(_CURSOR) or 0), self.chain.w3.eth.block_number
        if start > latest:
            return
        events = self.chain.fraud_proof.events
        for entry in events.Challenged.get_logs(from_block=start, to_block=latest):
            args = entry["args"]
            if args["node"] == self.chain.address and self.store.dispute_status(args["disputeId"]) is None:
                self.respond(int(args["disputeId"]), bytes(args["commitmentId"]), bytes(args["leaf"]), bytes(args["input"]))
        for entry in events.Resolved.get_logs(from_block=start, to_block=latest):
            args = entry["args"]
            if self.store.dispute_status(args["disputeId"]) is not None:
                outcome = "fraud: this node was slashed" if args["fraud"] else "honest: the challenger lost its bond"
                self.store.set_dispute(args["disputeId"], b"", b"", "fraud" if args["fraud"] else "honest")
                log.warning("dispute %d resolved, %s (slashed %d wei, bond to node %d wei)", args["disputeId"], outcome,
                            args["slashed"], args["bondToNode"])  # fmt: skip
        # Only now: a failure above retries the whole range, and answered disputes are skipped by their status.
        self.store.set_meta(_CURSOR, str(latest + 1))

    def respond(self, dispute_id: int, commitment_id: bytes, leaf: bytes, token_input: bytes) -> None:
        dispute = self.chain.call(self.chain.fraud_proof.functions.dispute(dispute_id))
        phase, output_hash = int(dispute[6]), bytes(dispute[10])
        if phase != _AWAITING_RESPONSE:
            self.store.set_dispute(dispute_id, commitment_id, leaf, "closed", note=f"phase {phase} when seen")
            return
        found = self.store.find_leaf(leaf)
        executor = self.executors.get(int(dispute[4]))
        if found is None or executor is None or executor.version != int(dispute[5]):
            self.store.set_dispute(dispute_id, commitment_id, leaf, "unknown_leaf")
            log.error("dispute %d names leaf 0x%s, which this node never answered with a version it serves: "
                      "it cannot respond", dispute_id, leaf.hex())  # fmt: skip
            return
        request, token = found
        x = request.inputs[token]
        if x.tobytes() != token_input:
            log.error("dispute %d: the challenged input differs from the stored one", dispute_id)
        activations = executor.activations(x)
        manipulated = keccak256(activations[-1].tobytes()) != output_hash
        activations[-1] = request.outputs[token]  # what was returned and signed, honest or not
        receipt = self.chain.send(self.chain.fraud_proof.functions.respond(dispute_id, [a.tobytes() for a in activations]))
        tx = tx_hash(receipt)
        self.store.set_dispute(dispute_id, commitment_id, leaf, "responded", tx=tx)
        log.warning("dispute %d on commitment 0x%s (request 0x%s token %d%s): responded with %d layers of "
                    "activations, tx %s", dispute_id, commitment_id.hex()[:16], request.request_id.hex()[:12], token,
                    ", a manipulated token" if manipulated else "", len(activations), tx)  # fmt: skip
