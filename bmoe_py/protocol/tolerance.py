"""The float agreement rule of committee disputes (docs/protocol.md 6), shared by validators and training replay."""
from __future__ import annotations

import numpy as np

__all__ = ["within_tolerance"]


def within_tolerance(claimed: np.ndarray, expected: np.ndarray, tolerance: int) -> bool:
    """Float agreement (protocol 6): max |claimed - expected| <= tolerance / 1e6 * max(1, max |expected|).

    Relative to the vector's scale so that one tolerance fits any layer; the floor of 1 keeps tiny outputs from
    demanding bit-exactness. A NaN or an infinity never agrees.
    """
    claimed = np.asarray(claimed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if claimed.shape != expected.shape or not np.all(np.isfinite(claimed)):
        return False
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    return bool(np.max(np.abs(claimed - expected)) <= tolerance / 1e6 * scale)
