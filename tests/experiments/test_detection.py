"""Experiment 3 (fast setting): a validator sampling 25% catches a node cheating on half of its tokens."""
from __future__ import annotations

import pytest

from bmoe_py.experiments import detection


@pytest.fixture(scope="module")
def result(local_network, results_dir):
    return detection.run("fast", local_network, results_dir, print)


def test_no_honest_node_is_slashed(result):
    assert result.data["honest_slashed"] == 0
    assert result.data["honest_slashed_wei"] == 0


def test_the_cheater_is_slashed_within_the_rounds(result):
    (cell,) = result.data["cells"]
    assert cell["slashed"]
    assert 1 <= cell["rounds"] <= result.params["max_rounds"]
    assert cell["seconds"] > 0


def test_result_has_the_table_and_the_figure(result, results_dir):
    assert result.tables[0].columns[0] == "sampling rate p"
    assert (results_dir / result.figures[0].file).exists()
