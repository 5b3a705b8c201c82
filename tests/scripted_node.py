"""An edge node played by a test, step by step, with real transactions and a real IPFS pin.

The validator tests need commitments whose every token they control (which one was manipulated, whether the node
answers a dispute), without an edge node process in between: this is the node's side of the protocol written out,
with its own key, stake and host registration. It computes honest outputs with the registered weights
(`int8_ref`), replaces the outputs of the tokens a test names, pins the window bundle and commits it, then answers
challenges the way docs/protocol.md 5 lets a cheater answer: honest activations for every layer but the last,
whose output is what it committed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from eth_account import Account

from bmoe_py.chain.client import Chain
from bmoe_py.crypto import Commitment, request_id
from bmoe_py.model.int8_ref import IntLayer, expert_forward
from bmoe_py.protocol.bundle import WindowBundle
from bmoe_py.publisher.fetch import load_expert_from_chain
from bmoe_py.publisher.publish import publish_model
from bmoe_py.storage.client import IpfsClient
from tiny_model import small_model

ETHER = 10**18


def fresh_key(funder, ether: int = 20) -> str:
    """A new key funded from a brownie account."""
    account = Account.create()
    funder.transfer(account.address, ether * ETHER)
    return "0x" + bytes(account.key).hex()


def create_task(chain: Chain, model_id: int, price: int = 10**9, escrow: int = ETHER // 10) -> int:
    receipt = chain.send(chain.ledger.functions.createTask(model_id, price), value=escrow)
    return int(chain.events(receipt, "ResultLedger", "TaskCreated")[0]["taskId"])


@dataclass
class Window:
    commitment: Commitment
    bundle: WindowBundle
    cid: str
    block: int
    honest: list[list[np.ndarray]]  # per token: every layer's honest activation


@dataclass
class ScriptedNode:
    chain: Chain
    ipfs: IpfsClient
    model_id: int
    nonce: int = 0
    windows: list[Window] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.chain.address

    def join(self, experts: list[int], stake: int = ETHER) -> None:
        """Stakes and registers as host of `experts`."""
        self.chain.send(self.chain.staking.functions.deposit(), value=stake)
        for e in experts:
            self.chain.send(self.chain.registry.functions.registerHost(self.model_id, e, f"http://127.0.0.1:1/{e}"))

    def commit(
        self, task_id: int, expert: int, layers: list[IntLayer], inputs: np.ndarray, manipulate: tuple[int, ...] = (),
        version: int = 1,
    ) -> Window:  # fmt: skip
        """Answers `inputs` as one request, flips the sign of (and shifts) the outputs of the `manipulate`
        positions, pins the bundle and commits it."""
        inputs = np.asarray(inputs, dtype=np.int8)
        honest = [expert_forward(layers, x[None, :]) for x in inputs]
        outputs = np.stack([h[-1][0] for h in honest]).copy()
        for p in manipulate:
            outputs[p] = np.clip(-outputs[p].astype(np.int16) + 3, -128, 127).astype(np.int8)
        return self._commit(task_id, expert, version, inputs, outputs, [[a[0] for a in h] for h in honest])

    def commit_float(
        self, task_id: int, expert: int, run, inputs: np.ndarray, manipulate: tuple[int, ...] = (), version: int = 1
    ) -> Window:
        """The float counterpart: `run` maps float32 tokens [n, d] to outputs; `manipulate`d outputs are negated."""
        inputs = np.asarray(inputs, dtype=np.float32)
        outputs = np.asarray(run(inputs), dtype=np.float32).copy()
        for p in manipulate:
            outputs[p] = -outputs[p] + 1.0
        return self._commit(task_id, expert, version, inputs, outputs, [])

    def _commit(self, task_id, expert, version, inputs, outputs, honest) -> Window:
        self.nonce += 1
        rid = request_id(task_id, self.address, self.nonce)
        bundle = WindowBundle.of_requests(self.address, task_id, self.model_id, expert, version, [(rid, inputs, outputs)])
        cid = self.ipfs.add_bytes(bundle.encode())
        receipt = self.chain.send(
            self.chain.ledger.functions.commit(task_id, expert, version, bundle.root, len(bundle), cid)
        )
        event = self.chain.events(receipt, "ResultLedger", "CommitmentPosted")[0]
        window = Window(Commitment.from_event(event["commitment"]), bundle, cid, receipt["blockNumber"], honest)
        self.windows.append(window)
        return window

    def respond(self, dispute_id: int) -> None:
        """Answers a FraudProof challenge: honest activations, the last replaced by the committed output."""
        fp = self.chain.fraud_proof
        challenged = fp.events.Challenged().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})[-1]
        leaf = bytes(challenged["args"]["leaf"])
        for window in self.windows:
            for position in range(len(window.bundle)):
                if window.bundle.leaf(position).hash() == leaf:
                    layers = [a.copy() for a in window.honest[position]]
                    layers[-1] = window.bundle.outputs[position]
                    self.chain.send(fp.functions.respond(dispute_id, [bytes(a.tobytes()) for a in layers]))
                    return
        raise LookupError(f"dispute {dispute_id} is about a leaf this node never committed")


# Fixtures of the tests that use a scripted node (imported by them): a tiny model, its expert 0, a staked node.


@pytest.fixture(scope="module")
def model_id(network, ipfs) -> int:
    return publish_model(network.chain(), ipfs, small_model()).model_id


@pytest.fixture(scope="module")
def layers(network, ipfs, model_id):
    return load_expert_from_chain(network.chain(), ipfs, model_id, 0).layers


@pytest.fixture
def node(network, ipfs, model_id, accounts) -> ScriptedNode:
    node = ScriptedNode(network.chain(fresh_key(accounts[0])), ipfs, model_id)
    node.join([0])
    return node


def travel(web3, seconds: int) -> None:
    web3.provider.make_request("evm_increaseTime", [seconds])
    web3.provider.make_request("evm_mine", [])
