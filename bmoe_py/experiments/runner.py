"""Runs experiments by name on one LocalNetwork and writes results/<name>.json, results/figures/*.png and
results/report.md (what `bmoe experiment` does)."""
from __future__ import annotations

import importlib
import inspect
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from .localnet import ROOT, LocalNetwork
from .report import ExperimentResult, render_report, write_result

__all__ = ["EXPERIMENTS", "load", "machine_info", "rerender", "run_experiments"]

RUN_FILE = "run.json"  # how the results in a folder were produced: machine, command, wall time

# name -> module of this package, in the report's order
EXPERIMENTS: dict[str, str] = {
    "inference-attack": "inference_attack",
    "training-attack": "training_attack",
    "detection": "detection",
    "cost": "cost",
    "baseline": "baseline",
}


def load(name: str) -> ModuleType:
    return importlib.import_module(f"bmoe_py.experiments.{EXPERIMENTS[name]}")


def run_experiments(
    names: Sequence[str], net: LocalNetwork, out_dir: Path, *, setting: str = "fast", seeds: list[int] | None = None,
    say: Callable[[str], None] = print, command: str = "",
) -> list[ExperimentResult]:  # fmt: skip
    """Runs `names` one after the other on `net`; writes each result as soon as it is done and the report at the end
    (and after each experiment, so an interrupted `all` still leaves a report of what finished)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[ExperimentResult] = []
    machine = machine_info()
    for i, name in enumerate(names, 1):
        module = load(name)
        say(f"==> experiment {i}/{len(names)}: {name} ({setting} setting)")
        kwargs = {}
        if seeds and "seeds" in inspect.signature(module.run).parameters:
            kwargs["seeds"] = seeds
        result = module.run(setting, net, out_dir, say, **kwargs)
        results.append(result)
        path = write_result(result, out_dir)
        say(f"==> {name} done in {result.wall_seconds:.0f} s: {path}")
        for finding in result.findings:
            say(f"    {finding}")
        run = {"machine": machine, "command": command, "wall_seconds": time.monotonic() - started}
        (out_dir / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        (out_dir / "report.md").write_text(render_report(results, machine, wall_seconds=run["wall_seconds"], command=command))
    say(f"==> wrote {out_dir / 'report.md'} ({time.monotonic() - started:.0f} s in all)")
    return results


def rerender(out_dir: Path, say: Callable[[str], None] = print) -> Path:
    """Rewrites report.md (and each <name>.json's tables, figures and findings) from the raw data of the results
    already in `out_dir`, with this checkout's presentation code (each module's `present(data, out_dir)` where it
    has one); the machine, command and wall time stay those of the run that measured them (run.json)."""
    out_dir = Path(out_dir)
    try:
        run = json.loads((out_dir / RUN_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"{out_dir / RUN_FILE}: {exc} (run the experiments first)") from None
    results = []
    for name in EXPERIMENTS:
        path = out_dir / f"{name}.json"
        if not path.exists():
            continue
        result = ExperimentResult.from_dict(json.loads(path.read_text()))
        present = getattr(load(name), "present", None)
        if present is not None:
            for key, value in present(result.data, out_dir).items():
                setattr(result, key, value)
            write_result(result, out_dir)
        results.append(result)
        say(f"==> {name}: {path}")
    machine = dict(run["machine"])
    machine["report rendered by"] = _git_commit()
    (out_dir / "report.md").write_text(render_report(results, machine, wall_seconds=run["wall_seconds"], command=run["command"]))
    say(f"==> wrote {out_dir / 'report.md'}")
    return out_dir / "report.md"


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM, GPU (if any), OS, Python, torch version and git commit, for the report."""
    info = {"CPU": _cpu_model(), "cores": str(os.cpu_count() or "?"), "RAM": _ram()}
    try:
        import torch

        info["GPU"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        info["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = "not installed"
    info["OS"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    info["Python"] = platform.python_version()
    info["git commit"] = _git_commit()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return commit + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
