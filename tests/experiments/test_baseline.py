"""Experiment 5 (fast setting) through the runner: nobody cheats, every policy equals the in-process model."""
from __future__ import annotations

import json

import pytest

from bmoe_py.experiments.runner import run_experiments


@pytest.fixture(scope="module")
def outcome(local_network, results_dir):
    (result,) = run_experiments(["baseline"], local_network, results_dir, setting="fast")
    return result, results_dir


def test_every_policy_gives_the_in_process_models_predictions(outcome):
    result, _ = outcome
    for dataset, entry in result.data.items():
        assert entry["all_equal"], dataset
        for policy, run in entry["policies"].items():
            assert run["accuracy"] == entry["exact_accuracy"], (dataset, policy)


def test_the_three_policies_are_compared(outcome):
    result, _ = outcome
    assert [row[1] for row in result.tables[0].rows] == ["none", "redundant:3", "optimistic:0.25"]


def test_runner_writes_the_json_the_figure_and_the_report(outcome):
    result, out = outcome
    saved = json.loads((out / "baseline.json").read_text())
    assert saved["name"] == "baseline" and saved["setting"] == "fast"
    assert (out / result.figures[0].file).stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert f"]({result.figures[0].file})" in report
    assert "## baseline:" in report and "- cores:" in report
