"""TDML-style screening of trainers (docs/protocol.md 11): after every round the coordinator compares what each
trainer reported and returned with its peers and flags the ones that stand out, so that validators replay every
step of theirs (priority sampling) instead of a random sample.

    stats = [TrainerStats(node, expert, loss=..., grad_norm=..., update_norm=..., output_ratio=...), ...]
    flags = screen(stats)                                   # pure: no chain, no network
    ScreeningRecorder(chain, model_id).record(flags, round_)  # Screening.flag for each, on chain

Two tests, both on the logarithm of each statistic (they are positive and scale-like: a cheater multiplies them,
it does not add to them), both robust to a minority of cheaters:

* robust z-score per statistic: z = 0.6745 (v - median) / MAD; |z| > 3.5 is an outlier (Iglewicz and Hoaglin 1993).
  The MAD has a floor (`min_spread`, in log units), so that honest trainers whose numbers agree to a few per cent
  are not flagged for a difference of one per cent; in this test the loss has a higher one
  (`LOSS_MIN_SPREAD`).
* 2-means over the vectors of robust z-scores: when the trainers fall into two clusters whose centroids are at least
  `min_gap` apart, the smaller cluster (a strict minority) is flagged. It catches a group of cheaters that moves
  several statistics a little each, which no single z-test sees.

A flag is a suspicion, not a proof: honest trainers can be flagged (false positives, which cost only extra
verification), and only a lost dispute (a slash) blacklists a node.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = [
    "STATISTICS",
    "Flag",
    "ScreeningRecorder",
    "TrainerStats",
    "cluster_flags",
    "outlier_flags",
    "robust_z",
    "screen",
]

log = logging.getLogger("bmoe.screening")

STATISTICS = ("loss", "grad_norm", "update_norm", "output_ratio")
Z_THRESHOLD = 3.5
# log units (~16% relative): below it honest trainers are treated as agreeing. Honest experts' statistics spread by
# 0.1 to 0.4 in log units round to round (tests/training/test_screening_tests.py HONEST_SPREAD), and the MAD of six
# or eight of them is itself noisy: with a floor of 0.05 an honest expert was flagged on its output ratio in the fast
# training-attack run. A cheater's Gaussian noise moves its output ratio by ~3 log units (|z| ~ 13 at this floor).
MIN_SPREAD = 0.15
# The loss is measured per expert on the samples the gate sends it first, and the gate specialises experts on classes
# of unequal difficulty: honest experts' losses differ by tens of per cent (an honest expert was flagged on a 30%
# higher loss in the fast training-attack run), where a cheater's noise multiplies the loss several times.
LOSS_MIN_SPREAD = 0.25
MIN_GAP = 6.0  # distance of the two 2-means centroids, in robust z units
_EPS = 1e-12


@dataclass(frozen=True)
class TrainerStats:
    """One trainer's numbers for one round of one expert.

    `loss`: mean loss of the samples whose top-1 expert it trains (what the coordinator measured);
    `grad_norm`, `update_norm`: means over the round of what the trainer reported on /v1/train/backward;
    `output_ratio`: ||y|| / ||x|| over the round's tokens, y as the trainer returned it.
    """

    node: str
    expert: int
    loss: float
    grad_norm: float
    update_norm: float
    output_ratio: float

    def values(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in STATISTICS], dtype=np.float64)


@dataclass(frozen=True)
class Flag:
    """A trainer that stands out: `reason` names the test and statistic, `score` the test's measure (|z| or gap)."""

    node: str
    expert: int
    reason: str
    score: float
    details: dict[str, float] = field(default_factory=dict, compare=False)


def robust_z(values: Sequence[float] | np.ndarray, min_spread: float = MIN_SPREAD) -> np.ndarray:
    """Modified z-scores 0.6745 (v - median) / max(MAD, min_spread) of `values` (already on a log scale)."""
    v = np.asarray(values, dtype=np.float64)
    median = np.median(v)
    mad = max(float(np.median(np.abs(v - median))), min_spread)
    return 0.6745 * (v - median) / mad


def _log_matrix(stats: Sequence[TrainerStats]) -> np.ndarray:
    """[trainers, statistics] of log values; a non-finite statistic (a NaN loss) counts as enormous."""
    matrix = np.stack([s.values() for s in stats])
    matrix = np.where(np.isfinite(matrix), matrix, 1e30)
    return np.log(np.maximum(matrix, _EPS))


def _z_matrix(stats: Sequence[TrainerStats], min_spread: float, loss_spread: float | None = None) -> np.ndarray:
    logs = _log_matrix(stats)
    spreads = [max(min_spread, loss_spread or 0.0) if name == "loss" else min_spread for name in STATISTICS]
    return np.stack([robust_z(logs[:, j], spreads[j]) for j in range(logs.shape[1])], axis=1)


def outlier_flags(
    stats: Sequence[TrainerStats], threshold: float = Z_THRESHOLD, min_spread: float = MIN_SPREAD
) -> list[Flag]:
    """One flag per trainer with some statistic at |z| > threshold (the reason names the largest)."""
    if len(stats) < 3:
        return []  # a median of two says nothing about which one is odd
    z = _z_matrix(stats, min_spread, LOSS_MIN_SPREAD)
    flags = []
    for i, s in enumerate(stats):
        j = int(np.argmax(np.abs(z[i])))
        if abs(z[i, j]) > threshold:
            details = {name: float(z[i, k]) for k, name in enumerate(STATISTICS)}
            flags.append(Flag(s.node, s.expert, f"robust-z:{STATISTICS[j]}", float(abs(z[i, j])), details))
    return flags


def _two_means(points: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Labels 0/1 of Lloyd's 2-means, started from the two points farthest apart (deterministic)."""
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    a, b = np.unravel_index(int(np.argmax(distances)), distances.shape)
    centroids = points[[a, b]].copy()
    labels = np.zeros(len(points), dtype=int)
    for _ in range(iterations):
        new = np.argmin(np.linalg.norm(points[:, None, :] - centroids[None], axis=-1), axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for c in (0, 1):
            if np.any(labels == c):
                centroids[c] = points[labels == c].mean(0)
    return labels


def cluster_flags(stats: Sequence[TrainerStats], min_gap: float = MIN_GAP, min_spread: float = MIN_SPREAD) -> list[Flag]:
    """Flags the smaller of two 2-means clusters of the z-score vectors when their centroids are `min_gap` apart
    and it is a strict minority; nothing otherwise."""
    if len(stats) < 3:
        return []
    z = _z_matrix(stats, min_spread)
    labels = _two_means(z)
    sizes = np.bincount(labels, minlength=2)
    small = int(np.argmin(sizes))
    if sizes[small] == 0 or 2 * sizes[small] >= len(stats):
        return []
    gap = float(np.linalg.norm(z[labels == 0].mean(0) - z[labels == 1].mean(0)))
    if gap < min_gap:
        return []
    return [
        Flag(s.node, s.expert, "cluster", gap, {"cluster_size": float(sizes[small])})
        for i, s in enumerate(stats)
        if labels[i] == small
    ]


def screen(
    stats: Sequence[TrainerStats], *, threshold: float = Z_THRESHOLD, min_gap: float = MIN_GAP,
    min_spread: float = MIN_SPREAD,
) -> list[Flag]:  # fmt: skip
    """Both tests; one flag per (node, expert): the outlier flag when both fire (it names the statistic)."""
    flags: dict[tuple[str, int], Flag] = {}
    for flag in cluster_flags(stats, min_gap, min_spread) + outlier_flags(stats, threshold, min_spread):
        flags[(flag.node, flag.expert)] = flag  # outlier flags come last and win
    return sorted(flags.values(), key=lambda f: (f.expert, f.node))


class ScreeningRecorder:
    """Writes flags and blacklistings to the model's `Screening` contract (the model owner's key), through
    `bmoe_py.chain.screening` (reasons as bytes32 labels, scores in millionths)."""

    def __init__(self, chain: Chain, model_id: int) -> None:
        self.chain = chain
        self.model_id = model_id

    def record(self, flags: Sequence[Flag], round_: int) -> list[str]:
        """`Screening.flag` for every flag; the transaction hashes."""
        from ..chain import screening

        hashes = []
        for f in flags:
            receipt = screening.flag(self.chain, self.model_id, f.node, round_, f.reason, min(f.score, 1e12))
            hashes.append(_hex(receipt["transactionHash"]))
            log.info("round %d: flagged %s (expert %d): %s, score %.2f", round_, f.node, f.expert, f.reason, f.score)
        return hashes

    def blacklist(self, node: str, evidence: bytes) -> str | None:
        """`Screening.blacklist` with 32 bytes of evidence (the hash of the transaction that slashed it, say);
        None if it is already listed."""
        from ..chain import screening

        if self.is_blacklisted(node):
            return None
        receipt = screening.blacklist(self.chain, self.model_id, node, evidence)
        log.info("blacklisted %s", node)
        return _hex(receipt["transactionHash"])

    def is_blacklisted(self, node: str) -> bool:
        from ..chain import screening

        return screening.screening_record(self.chain, self.model_id, node).blacklisted


def _hex(value: bytes | str) -> str:
    text = value.hex() if isinstance(value, (bytes, bytearray)) else str(value)
    return text if text.startswith("0x") else "0x" + text
