"""Experiment 4 (fast setting): what each policy costs, with one cheater among 4 nodes."""
from __future__ import annotations

import pytest

from bmoe_py.experiments import cost

ETHER = 10**18


@pytest.fixture(scope="module")
def runs(local_network, results_dir):
    result = cost.run("fast", local_network, results_dir, print)
    return {r["policy"].split(":")[0]: r for r in result.data["runs"]}


def test_redundant_runs_every_expert_call_three_times(runs):
    assert runs["none"]["expert_calls_per_token"] == pytest.approx(1.0)
    assert 2.9 <= runs["redundant"]["expert_calls_per_token"] <= 3.0


def test_optimistic_adds_the_validators_sample_to_the_compute(runs):
    assert runs["optimistic"]["compute_factor"] == pytest.approx(runs["optimistic"]["expert_calls_per_token"] + 0.25)


def test_every_policy_pays_gas_for_its_tokens(runs):
    assert all(r["gas_per_1000_tokens"] > 0 for r in runs.values())


def test_only_verified_policies_move_the_cheaters_stake(runs):
    assert runs["none"]["slashed_wei"] == 0
    assert runs["redundant"]["slashed_wei"] == runs["optimistic"]["slashed_wei"] == ETHER  # the model's minimum stake
