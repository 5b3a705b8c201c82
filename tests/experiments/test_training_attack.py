"""Experiment 2 (fast setting): 1 of 4 trainers (25%) adds large Gaussian noise to its outputs, in verified mode
(the full setting adds 0% and ~40%, and traditional training, for the report)."""
from __future__ import annotations

import pytest

from bmoe_py.experiments import training_attack


@pytest.fixture(scope="module")
def result(local_network, results_dir):
    return training_attack.run("fast", local_network, results_dir, print)


def _scenario(result, malicious: int, mode: str) -> dict:
    (entry,) = [s for s in result.data["scenarios"] if s["malicious"] == malicious and s["mode"] == mode]
    return entry


def test_verified_training_under_attack_ends_above_its_starting_accuracy(result):
    verified = _scenario(result, 1, "verified")
    assert verified["rounds"][-1]["accuracy"] > max(verified["initial_accuracy"], 0.1) + 0.05


def test_in_verified_mode_the_cheater_ends_slashed_and_blacklisted(result):
    attacked = _scenario(result, 1, "verified")
    assert set(attacked["slashed"]) == set(attacked["cheaters"])
    assert set(attacked["blacklisted"]) == set(attacked["cheaters"])
    assert attacked["honest_slashed"] == []


def test_screening_flags_the_cheater_in_the_first_round(result):
    rounds = _scenario(result, 1, "verified")["rounds"]
    assert rounds[0]["true_flags"] >= 1
    assert rounds[0]["false_flags"] == 0


def test_the_cheaters_experts_are_rolled_back_and_reassigned_to_honest_trainers(result):
    attacked = _scenario(result, 1, "verified")
    (drop,) = [r for r in attacked["rounds"] if r["dropped"]]
    (cheater,) = attacked["cheaters"]
    assert drop["dropped"] == [cheater]
    theirs = sorted(int(e) for e, trainer in attacked["rounds"][0]["trainers"].items() if trainer == cheater)
    assert sorted(int(e) for e in drop["rolled_back"]) == theirs
    assert cheater not in attacked["final_trainers"].values()


def test_result_has_its_table_figures_and_findings(result, results_dir):
    assert result.name == "training-attack" and result.setting == "fast"
    assert len(result.tables) == 1 and len(result.tables[0].rows) == len(result.params["scenarios"])
    assert len(result.figures) == 3 and all((results_dir / f.file).exists() for f in result.figures)
    assert result.findings
