"""`bmoe experiment`'s command line (no network)."""
from __future__ import annotations

import pytest

from bmoe_py.cli.main import build_parser
from bmoe_py.experiments.runner import EXPERIMENTS


def test_help_describes_every_experiment(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["experiment", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in [*EXPERIMENTS, "all"]:
        assert f"\n  {name} " in text


def test_defaults_are_the_fast_setting_on_the_default_ports():
    args = build_parser().parse_args(["experiment", "all"])
    assert (args.setting, args.chain_port, args.ipfs_port, args.seeds) == ("fast", 8545, 5001, None)
    assert str(args.out) == "results"


def test_seeds_are_a_comma_separated_list():
    args = build_parser().parse_args(["experiment", "inference-attack", "--setting", "full", "--seeds", "3,4,5"])
    assert args.seeds == [3, 4, 5]


def test_an_unknown_experiment_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["experiment", "nonsense"])
    assert exit_.value.code == 2


def test_report_only_without_results_says_so(tmp_path, capsys):
    from bmoe_py.cli.main import main

    assert main(["experiment", "all", "--report-only", "--out", str(tmp_path)]) == 1
    assert "run the experiments first" in capsys.readouterr().err
