"""A trainer played by a test (docs/protocol.md 11): one round of one expert, written out step by step with the
protocol's own step function (`records.train_step`), then the trainer's side of `/v1/train/finish`: pin the next
checkpoint, publish it as the expert's trainer, pin the training window bundle and commit it.

Like tests/scripted_node.py for inference windows, this gives the validator tests a window whose every step they
control (which step's returned outputs are manipulated, whether the registered checkpoint is the trained one).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from bmoe_py.chain.client import Chain
from bmoe_py.crypto import Commitment
from bmoe_py.model.moe import Expert
from bmoe_py.model.weights import encode_float_expert, float_expert_root
from bmoe_py.storage.client import IpfsClient
from bmoe_py.training.records import TrainStep, TrainWindowBundle, forward, make_optimizer, train_step

ETHER = 10**18


@dataclass
class TrainingWindow:
    commitment: Commitment
    bundle: TrainWindowBundle
    cid: str


def train_round(base: Expert, steps: int, tokens: int, lr: float = 1e-2, seed: int = 0,
                manipulate: tuple[int, ...] = ()) -> tuple[list[TrainStep], Expert]:  # fmt: skip
    """`steps` honest steps from `base` on random data; the returned outputs of the `manipulate` steps are negated
    (the parameters are still updated honestly, as an attacking edge node does). Returns the steps and the
    trained expert."""
    rng = np.random.default_rng(seed)
    expert = copy.deepcopy(base)
    optimizer = make_optimizer(expert)
    d_in, d_out = expert.fc1.in_features, expert.fc2.out_features
    recorded = []
    for s in range(steps):
        x = rng.normal(size=(tokens, d_in)).astype(np.float32)
        grad_y = rng.normal(size=(tokens, d_out)).astype(np.float32) / tokens
        y = forward(expert, x)
        grad_x = train_step(expert, optimizer, x, grad_y, lr)
        if s in manipulate:
            y = -y + 1.0
        recorded.append(TrainStep(s, lr, x, grad_y, y, grad_x))
    return recorded, expert


def commit_round(chain: Chain, ipfs: IpfsClient, model_id: int, expert_index: int, task_id: int, base_version: int,
                 steps: list[TrainStep], trained: Expert, round_: int = 1) -> TrainingWindow:  # fmt: skip
    """The trainer's `/v1/train/finish`: publishes `trained` as the next version and commits the window."""
    data = encode_float_expert(trained)
    weights_cid = ipfs.add_bytes(data)
    root = float_expert_root(trained)
    d_model, d_hidden = trained.fc1.in_features, trained.fc1.out_features
    layers = [(d_model, d_hidden, 0, 0, False), (d_hidden, d_model, 0, 0, False)]
    receipt = chain.send(chain.registry.functions.publishExpert(model_id, expert_index, weights_cid, root, layers))
    next_version = int(chain.events(receipt, "ExpertRegistry", "ExpertPublished")[0]["version"])
    bundle = TrainWindowBundle(
        chain.address, task_id, model_id, expert_index, base_version, round_, next_version, weights_cid, root,
        tuple(steps),
    )  # fmt: skip
    cid = ipfs.add_bytes(bundle.encode())
    receipt = chain.send(
        chain.ledger.functions.commit(task_id, expert_index, base_version, bundle.root, bundle.token_count, cid)
    )
    event = chain.events(receipt, "ResultLedger", "CommitmentPosted")[0]
    return TrainingWindow(Commitment.from_event(event["commitment"]), bundle, cid)


def tampered(expert: Expert, delta: float = 0.5) -> Expert:
    """A copy of `expert` with every fc2 bias moved by `delta`: a checkpoint that is not the trained one."""
    other = copy.deepcopy(expert)
    with torch.no_grad():
        other.fc2.bias.add_(delta)
    return other
