"""Experiment 1 (fast setting): one signflip cheater among 4 nodes (25%), under each policy."""
from __future__ import annotations

import pytest

from bmoe_py.experiments import inference_attack


@pytest.fixture(scope="module")
def result(local_network, results_dir):
    return inference_attack.run("fast", local_network, results_dir, print)


def _accuracy(result, cheaters: int, policy: str, key: str = "accuracy") -> float:
    (entry,) = [s for s in result.data["summary"] if s["cheaters"] == cheaters and s["policy"].startswith(policy)]
    return entry[key]["mean"]


def test_without_verification_a_signflip_cheater_costs_accuracy(result):
    assert _accuracy(result, 1, "none") < _accuracy(result, 0, "none") - 0.05


def test_redundant_voting_keeps_the_clean_accuracy(result):
    assert _accuracy(result, 1, "redundant") == _accuracy(result, 0, "none")


def test_optimistic_recovers_the_clean_accuracy_once_the_cheater_is_slashed(result):
    assert _accuracy(result, 1, "optimistic") < _accuracy(result, 0, "none")
    assert _accuracy(result, 1, "optimistic", "accuracy_after") == _accuracy(result, 0, "none")


def test_verified_policies_slash_the_cheater_and_none_does_not(result):
    slashed = {r["policy"].split(":")[0]: r["slashed"] for r in result.data["records"] if r["cheaters"] == 1}
    assert slashed == {"none": 0, "redundant": 1, "optimistic": 1}


def test_no_honest_node_is_slashed(result):
    assert set(result.data["honest_slashed"].values()) == {0}


def test_result_has_a_table_and_a_figure_per_dataset(result, results_dir):
    assert result.name == "inference-attack" and result.setting == "fast"
    assert len(result.tables) == len(result.figures) == len(result.params["datasets"])
    assert all((results_dir / f.file).exists() for f in result.figures)
