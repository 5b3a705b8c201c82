"""matplotlib (Agg backend: no display needed) with the experiments' shared look."""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["pyplot", "save"]

POLICY_COLORS = {"none": "#cc6677", "redundant": "#117733", "optimistic": "#4477aa", "after disputes": "#88ccee"}


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color(policy: str) -> str:
    for prefix, value in POLICY_COLORS.items():
        if policy.startswith(prefix) or prefix in policy:
            return value
    return "#555555"


def save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
