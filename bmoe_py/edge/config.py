"""What an edge node is told at start: which model and experts it hosts, where it listens, where it keeps its state,
how it windows its commitments, and (for experiments only) how it cheats."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .attacks import AttackConfig

__all__ = ["EdgeConfig"]


@dataclass(frozen=True)
class EdgeConfig:
    model_id: int
    experts: tuple[int, ...]
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port chosen by the OS
    public_url: str | None = None  # the endpoint registered on chain; default http://host:port
    stake: int | None = None  # wei to hold staked; default (and at least) the model's minNodeStake
    window_seconds: float = 10.0
    window_tokens: int = 8192
    attack: AttackConfig = field(default_factory=AttackConfig)
    device: str = "auto"  # auto | cpu | cuda
    ready_file: Path | None = None
    poll_seconds: float = 0.5  # period of the background duties (windows, payments, disputes)

    def __post_init__(self) -> None:
        if not self.experts:
            raise ValueError("an edge node hosts at least one expert")
        if len(set(self.experts)) != len(self.experts) or min(self.experts) < 0:
            raise ValueError(f"expert indices must be distinct and non-negative, got {list(self.experts)}")
        if self.window_seconds <= 0 or self.window_tokens <= 0:
            raise ValueError("--window-seconds and --window-tokens must be positive")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, not {self.device!r}")
