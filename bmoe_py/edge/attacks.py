"""Attack modes: how a dishonest node bends its outputs, for the experiments that measure what B-MoE catches.

Off by default. A manipulating node still signs, stores and commits exactly what it returned: that is what makes
its fraud provable on chain (docs/protocol.md 8.1). Every mode works on the output vectors of the selected tokens:

- `gaussian`: adds Gaussian noise of standard deviation `strength` x the output's scale;
- `signflip`: negates the outputs (times `strength`);
- `scale`: multiplies the outputs by `1 + strength`;
- `random`: replaces the outputs by uniform noise over the output's range (`strength` x scale);
- `targeted`: adds `strength` x scale along one fixed direction (drawn from the seed), the same for every token,
  to push the model towards one answer.

The scale is 32 for int8 outputs (a quarter of their range) and the outputs' standard deviation for float ones.
Each token is manipulated with probability `fraction`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ATTACK_MODES", "AttackConfig", "Attacker"]

ATTACK_MODES = ("none", "gaussian", "signflip", "scale", "random", "targeted")
_INT8_SCALE = 32.0


@dataclass(frozen=True)
class AttackConfig:
    mode: str = "none"
    strength: float = 1.0
    fraction: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ATTACK_MODES:
            raise ValueError(f"attack mode must be one of {', '.join(ATTACK_MODES)}, not {self.mode!r}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"attack fraction must be in [0, 1], not {self.fraction}")
        if self.strength < 0:
            raise ValueError(f"attack strength must be non-negative, not {self.strength}")

    @property
    def enabled(self) -> bool:
        return self.mode != "none" and self.fraction > 0


@dataclass
class Attacker:
    """Applies one `AttackConfig`; its random stream is seeded once, so a run is reproducible request by request."""

    config: AttackConfig
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)

    def __call__(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(returned outputs, bool mask of the tokens whose output changed)."""
        if not self.config.enabled:
            return outputs, np.zeros(len(outputs), dtype=bool)
        exact = outputs.dtype == np.int8
        chosen = self._rng.random(len(outputs)) < self.config.fraction
        values = outputs.astype(np.float64)
        scale = _INT8_SCALE if exact else float(values.std() or 1.0)
        bent = self._bend(values[chosen], scale)
        result = values.copy()
        result[chosen] = bent
        if exact:
            result = np.clip(np.rint(result), -128, 127).astype(np.int8)
        else:
            result = result.astype(np.float32)
        changed = np.any(result != outputs, axis=1)
        return result, changed

    def _bend(self, v: np.ndarray, scale: float) -> np.ndarray:
        mode, s = self.config.mode, self.config.strength
        if mode == "gaussian":
            return v + self._rng.normal(0.0, s * scale, v.shape)
        if mode == "signflip":
            return -s * v
        if mode == "scale":
            return (1.0 + s) * v
        if mode == "random":
            return self._rng.uniform(-s * scale * 4, s * scale * 4, v.shape)
        # targeted: one direction for the whole run, so the errors add up downstream instead of cancelling
        direction = np.random.default_rng(self.config.seed + 1).standard_normal(v.shape[1])
        direction /= np.linalg.norm(direction) or 1.0
        return v + s * scale * np.sqrt(v.shape[1]) * direction
