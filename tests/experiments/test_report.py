"""results/report.md and results/<name>.json from ExperimentResults, without a network."""
from __future__ import annotations

import json

from bmoe_py.experiments.report import ExperimentResult, Figure, Table, markdown_table, render_report, write_result

MACHINE = {"CPU": "Test CPU", "cores": "2", "RAM": "8.0 GiB", "GPU": "none", "torch": "2.x", "git commit": "abc123"}


def _result(name: str = "baseline") -> ExperimentResult:
    return ExperimentResult(
        name=name, title="Clean baseline", setting="full", params={"samples": 100, "policies": ["none", "redundant:3"]},
        seeds=[0, 1, 2], tables=[Table("Accuracy", ["policy", "accuracy"], [["none", 0.9312], ["redundant:3", None]], note="n=100")],
        figures=[Figure("figures/baseline.png", "Accuracy per policy")], findings=["every policy gives 93.12%"],
        data={"x": 1}, wall_seconds=12.3,
    )  # fmt: skip


def test_markdown_table_has_a_header_separator_and_one_line_per_row():
    lines = markdown_table(Table("T", ["a", "b"], [[1, "x|y"], [0.123456, None]])).splitlines()
    assert lines[2:] == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "| 0.1235 | - |"]


def test_report_states_setting_seeds_machine_and_wall_time():
    text = render_report([_result()], MACHINE, wall_seconds=61.0, command="bmoe experiment all --setting full")
    assert "bmoe experiment all --setting full" in text
    assert "- setting: full" in text
    assert "- seeds: 0, 1, 2" in text
    assert "- wall time: 61 s in all (baseline 12 s)" in text
    for key, value in MACHINE.items():
        assert f"- {key}: {value}" in text


def test_report_has_each_experiments_findings_tables_and_figure_links():
    text = render_report([_result("baseline"), _result("cost")], MACHINE, wall_seconds=30.0)
    assert "## baseline: Clean baseline" in text and "## cost: Clean baseline" in text
    assert "- every policy gives 93.12%" in text
    assert "| none | 0.9312 |" in text and "| redundant:3 | - |" in text
    assert "![Accuracy per policy](figures/baseline.png)" in text
    assert "[baseline.json](baseline.json)" in text


def test_write_result_round_trips_through_json(tmp_path):
    path = write_result(_result(), tmp_path)
    assert path == tmp_path / "baseline.json"
    assert ExperimentResult.from_dict(json.loads(path.read_text())) == _result()


def test_rerender_rewrites_the_report_from_saved_results_keeping_the_run_machine(tmp_path):
    from bmoe_py.experiments.runner import RUN_FILE, rerender

    write_result(_result(), tmp_path)
    run = {"machine": MACHINE, "command": "bmoe experiment all --setting full", "wall_seconds": 99.0}
    (tmp_path / RUN_FILE).write_text(json.dumps(run))
    report = rerender(tmp_path, say=lambda _: None).read_text()
    assert "- CPU: Test CPU" in report and "- git commit: abc123" in report and "- report rendered by: " in report
    assert "Produced by `bmoe experiment all --setting full`." in report and "every policy gives 93.12%" in report
