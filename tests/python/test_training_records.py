"""Training step records (docs/protocol.md 11): the step, its leaf, the training bundle and the replay."""
import copy

import numpy as np
import pytest
import torch

from bmoe_py.model.moe import Expert
from bmoe_py.training.records import (
    TrainBundleError,
    TrainStep,
    TrainWindowBundle,
    checkpoint_root,
    forward,
    judge_step,
    make_optimizer,
    replay,
    step_request_id,
    train_step,
)

NODE = "0x" + "ab" * 20
TOLERANCE = 1000  # 1e-3 relative


def _expert(seed: int = 0) -> Expert:
    torch.manual_seed(seed)
    return Expert(6, 10)


def _round(expert: Expert, steps: int = 3, n: int = 5, seed: int = 1) -> tuple[list[TrainStep], Expert]:
    """An honest trainer's round: the recorded steps and its final parameters."""
    rng = np.random.default_rng(seed)
    trainer = copy.deepcopy(expert)
    optimizer = make_optimizer(trainer)
    records = []
    for s in range(steps):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        y = forward(trainer, x)
        grad_y = rng.standard_normal((n, 6)).astype(np.float32)
        grad_x = train_step(trainer, optimizer, x, grad_y, 0.01)
        records.append(TrainStep(s, 0.01, x, grad_y, y, grad_x))
    return records, trainer


def _bundle(steps: list[TrainStep], final: Expert) -> TrainWindowBundle:
    return TrainWindowBundle(NODE, 7, 1, 2, 1, 1, 2, "QmCheckpoint", checkpoint_root(final), tuple(steps))


def test_step_request_ids_differ_per_task_expert_round_and_step():
    ids = {step_request_id(1, 0, 1, 0), step_request_id(2, 0, 1, 0), step_request_id(1, 1, 1, 0),
           step_request_id(1, 0, 2, 0), step_request_id(1, 0, 1, 1)}  # fmt: skip
    assert len(ids) == 5 and all(len(i) == 32 for i in ids)


def test_a_training_step_updates_the_parameters_and_returns_input_gradients():
    expert = _expert()
    before = expert.fc1.weight.detach().clone()
    grad_x = train_step(expert, make_optimizer(expert), np.ones((2, 6), np.float32), np.ones((2, 6), np.float32), 0.1)
    assert grad_x.shape == (2, 6) and np.abs(grad_x).sum() > 0
    assert not torch.equal(before, expert.fc1.weight)


def test_replay_reproduces_an_honest_round_bit_for_bit():
    base = _expert()
    steps, final = _round(base)
    replica = copy.deepcopy(base)
    replayed = list(replay(replica, steps))
    for record, again in zip(steps, replayed):
        assert np.array_equal(record.outputs, again.outputs) and np.array_equal(record.grad_inputs, again.grad_inputs)
    for name, value in final.state_dict().items():
        assert torch.equal(value, replica.state_dict()[name])


def test_bundle_round_trips_with_the_same_root():
    steps, final = _round(_expert())
    bundle = _bundle(steps, final)
    again = TrainWindowBundle.decode(bundle.encode())
    assert again.root == bundle.root and again.token_count == 15 and again.round == 1
    assert again.encode() == bundle.encode()


def test_only_the_last_leaf_binds_the_next_weights_root():
    steps, final = _round(_expert())
    bundle = _bundle(steps, final)
    other = TrainWindowBundle(NODE, 7, 1, 2, 1, 1, 2, "QmCheckpoint", bytes(32), tuple(steps))
    assert bundle.leaf(0) == other.leaf(0) and bundle.leaf(1) == other.leaf(1)
    assert bundle.leaf(2) != other.leaf(2)


def test_decoding_refuses_an_inference_bundle_and_garbage():
    from bmoe_py.protocol.bundle import WindowBundle

    inference = WindowBundle.of_requests(NODE, 1, 1, 0, 1, [(bytes(32), np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32))])
    with pytest.raises(TrainBundleError, match="format"):
        TrainWindowBundle.decode(inference.encode())
    with pytest.raises(TrainBundleError):
        TrainWindowBundle.decode(b"not a bundle")


def test_honest_steps_are_judged_honest_including_the_checkpoint():
    base = _expert()
    steps, final = _round(base)
    bundle = _bundle(steps, final)
    for position in range(len(bundle)):
        assert not judge_step(copy.deepcopy(base), bundle, position, TOLERANCE, next_checkpoint=final).fraud


def test_a_manipulated_output_is_fraud_at_its_step_only():
    base = _expert()
    steps, final = _round(base)
    bad = steps[1]
    steps[1] = TrainStep(1, bad.lr, bad.inputs, bad.grad_outputs, bad.outputs + 0.5, bad.grad_inputs)
    bundle = _bundle(steps, final)
    assert not judge_step(copy.deepcopy(base), bundle, 0, TOLERANCE).fraud
    verdict = judge_step(copy.deepcopy(base), bundle, 1, TOLERANCE)
    assert verdict.fraud and "outputs" in verdict.reason


def test_a_checkpoint_that_is_not_the_replay_is_fraud_at_the_last_step():
    base = _expert()
    steps, final = _round(base)
    poisoned = copy.deepcopy(final)
    with torch.no_grad():
        poisoned.fc2.bias.add_(1.0)
    bundle = _bundle(steps, poisoned)
    verdict = judge_step(copy.deepcopy(base), bundle, 2, TOLERANCE, next_checkpoint=poisoned)
    assert verdict.fraud and "checkpoint" in verdict.reason


def test_judging_the_last_step_without_the_checkpoint_is_refused():
    base = _expert()
    steps, final = _round(base)
    with pytest.raises(ValueError, match="next_checkpoint"):
        judge_step(copy.deepcopy(base), _bundle(steps, final), 2, TOLERANCE)
