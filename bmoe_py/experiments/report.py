"""What an experiment hands back, and the report made of them (`results/report.md`, `results/<name>.json`).

Every experiment module of this package exposes NAME, TITLE and

    def run(setting: str, net: LocalNetwork, out_dir: Path, say: Callable[[str], None]) -> ExperimentResult

`setting` is "fast" (the test suite's, under a minute) or "full" (the report's); `out_dir` is the results folder
(figures go to `out_dir / "figures"`, see `figure_path`); `say` prints a progress line.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ExperimentResult", "Figure", "Table", "figure_path", "markdown_table", "render_report", "write_result"]

FIGURES = "figures"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Figure:
    file: str  # a PNG under results/figures/, relative to the results folder ("figures/x.png")
    caption: str


@dataclass
class ExperimentResult:
    name: str
    title: str
    setting: str  # "fast" | "full"
    params: dict
    seeds: list[int]
    tables: list[Table]
    figures: list[Figure]
    findings: list[str]  # headline sentences with numbers, honest about what does not hold
    data: dict  # raw numbers, saved as results/<name>.json
    wall_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentResult:
        data = dict(data)
        data["tables"] = [Table(**t) for t in data["tables"]]
        data["figures"] = [Figure(**f) for f in data["figures"]]
        return cls(**data)


def figure_path(out_dir: Path, name: str) -> tuple[Path, str]:
    """(where to save a PNG called `name`, the link to it relative to `out_dir`, for Figure.file)."""
    folder = Path(out_dir) / FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name, f"{FIGURES}/{name}"


def write_result(result: ExperimentResult, out_dir: Path) -> Path:
    """results/<name>.json: the whole result (tables, findings and raw data)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.name}.json"
    path.write_text(json.dumps(result.to_dict(), indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays, Paths: the experiments' raw data may hold them
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    text = "-" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)


def render_report(results: list[ExperimentResult], machine: dict[str, str], *, wall_seconds: float, command: str = "") -> str:
    """results/report.md: how it was run (setting, seeds, machine, wall time), then per experiment its findings,
    tables and figures."""
    settings = sorted({r.setting for r in results})
    seeds = sorted({s for r in results for s in r.seeds})
    out = ["# B-MoE experiments", ""]
    if command:
        out += [f"Produced by `{command}`.", ""]
    out += [
        f"- setting: {', '.join(settings) or '-'}",
        f"- seeds: {', '.join(str(s) for s in seeds) or '-'}",
        f"- wall time: {wall_seconds:.0f} s in all ("
        + ", ".join(f"{r.name} {r.wall_seconds:.0f} s" for r in results)
        + ")",
    ]
    out += [f"- {key}: {value}" for key, value in machine.items()]
    out.append("")
    if results:
        out += ["| experiment | title | wall time (s) |", "|---|---|---|"]
        out += [f"| [{r.name}](#{_anchor(r)}) | {r.title} | {r.wall_seconds:.0f} |" for r in results]
        out.append("")
    for result in results:
        out += [f"## {result.name}: {result.title}", ""]
        params = ", ".join(f"{k}={_param(v)}" for k, v in result.params.items())
        out += [f"Setting `{result.setting}`, seeds {result.seeds}; parameters: {params}.", ""]
        if result.findings:
            out += ["Findings:", ""] + [f"- {finding}" for finding in result.findings] + [""]
        for table in result.tables:
            out += [markdown_table(table), ""]
        for figure in result.figures:
            out += [f"![{figure.caption}]({figure.file})", "", f"*{figure.caption}*", ""]
        out += [f"Raw numbers: [{result.name}.json]({result.name}.json)", ""]
    return "\n".join(out)


def _anchor(result: ExperimentResult) -> str:
    heading = f"{result.name}: {result.title}".lower()
    return "".join(c for c in heading.replace(" ", "-") if c.isalnum() or c in "-_")


def _param(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
