"""Screening statistics (bmoe_py/training/screening.py): pure functions, no chain."""
from __future__ import annotations

import numpy as np
import pytest

from bmoe_py.training.screening import TrainerStats, cluster_flags, outlier_flags, robust_z, screen

# log-scale spreads of honest trainers, as measured over rounds of the training-attack experiment's model: experts
# with different loads see different gradients, Adam's updates are nearly the same size whatever the load
HONEST_SPREAD = {"loss": 0.10, "grad_norm": 0.40, "update_norm": 0.10, "output_ratio": 0.20}
HONEST_CENTER = {"loss": 1.5, "grad_norm": 0.05, "update_norm": 0.02, "output_ratio": 0.8}


def honest_round(rng: np.random.Generator, trainers: int = 8) -> list[TrainerStats]:
    return [
        TrainerStats(f"0x{i:040x}", i, **{k: HONEST_CENTER[k] * float(np.exp(rng.normal(0, HONEST_SPREAD[k]))) for k in HONEST_CENTER})
        for i in range(trainers)
    ]


def poisoned(stats: TrainerStats, factor: float = 20.0) -> TrainerStats:
    """What a trainer adding large Gaussian noise to its outputs looks like: a much larger output norm and
    a higher loss on the samples it serves."""
    return TrainerStats(stats.node, stats.expert, stats.loss * 2.5, stats.grad_norm, stats.update_norm, stats.output_ratio * factor)


def test_robust_z_of_a_far_value_is_large_and_of_the_median_is_zero():
    z = robust_z(np.log([1.0, 1.1, 0.9, 1.05, 0.95, 100.0]))
    assert abs(z[-1]) > 10
    assert max(abs(z[:-1])) < 2


def test_robust_z_floors_the_spread_of_nearly_equal_values():
    z = robust_z(np.log([1.0, 1.0, 1.0, 1.0, 1.01]))
    assert abs(z[-1]) < 1  # a 1% difference is no outlier when everyone else agrees exactly


def test_a_clear_outlier_is_flagged_with_the_statistic_that_gave_it_away():
    stats = honest_round(np.random.default_rng(0))
    stats[3] = poisoned(stats[3])
    flags = outlier_flags(stats)
    assert [f.expert for f in flags] == [3]
    assert flags[0].reason == "robust-z:output_ratio" and flags[0].score > 3.5


def test_three_cheaters_of_eight_are_all_flagged():
    stats = honest_round(np.random.default_rng(1))
    for i in (1, 4, 6):
        stats[i] = poisoned(stats[i])
    assert [f.expert for f in screen(stats)] == [1, 4, 6]


def test_clustering_flags_a_minority_that_moves_every_statistic_a_little():
    # honest trainers agree to 2%; two trainers are twice as large on every statistic: no single z-score passes 3.5,
    # but together they are a cluster far from the rest
    wobble = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.02, 0.98]
    stats = [
        TrainerStats(f"0x{i:040x}", i, *(HONEST_CENTER[k] * w * (2.0 if i in (0, 5) else 1.0) for k in HONEST_CENTER))
        for i, w in enumerate(wobble)
    ]
    assert outlier_flags(stats) == []
    flags = cluster_flags(stats)
    assert sorted(f.expert for f in flags) == [0, 5]
    assert all(f.reason == "cluster" and f.score >= 6 for f in flags)


def test_clustering_never_flags_a_majority():
    stats = honest_round(np.random.default_rng(3))
    for i in range(5):
        stats[i] = poisoned(stats[i])
    assert all(f.expert >= 5 for f in cluster_flags(stats))


def test_an_honest_round_flags_nobody():
    assert screen(honest_round(np.random.default_rng(4))) == []


def test_false_positive_rate_on_honest_rounds_is_a_few_percent():
    """1000 simulated all-honest rounds of 8 trainers with the spreads above: the fraction of (trainer, round)
    flags is the false-positive rate. With 8 peers the MAD is a noisy scale estimate, so |z| > 3.5 fires on about 5%
    of honest trainer-rounds (clustering alone: about 0.5%); a flag only buys a full replay of that round."""
    rng = np.random.default_rng(5)
    rounds = 1000
    flagged = sum(len(screen(honest_round(rng))) for _ in range(rounds))
    rate = flagged / (rounds * 8)
    print(f"false-positive rate: {rate:.4f} ({flagged} flags in {rounds} honest rounds of 8)")
    assert 0 < rate < 0.08


def test_fewer_than_three_trainers_are_never_flagged():
    stats = honest_round(np.random.default_rng(6), trainers=2)
    stats[1] = poisoned(stats[1])
    assert screen(stats) == []


def test_a_nan_loss_counts_as_an_outlier():
    stats = honest_round(np.random.default_rng(7))
    s = stats[2]
    stats[2] = TrainerStats(s.node, s.expert, float("nan"), s.grad_norm, s.update_norm, s.output_ratio)
    assert [f.expert for f in outlier_flags(stats)] == [2]


def test_an_honest_expert_with_a_third_higher_loss_is_no_outlier():
    # the gate hands experts classes of unequal difficulty: seven experts agreeing on their loss to 1% make the MAD
    # tiny, and without the loss's own floor the eighth, 35% higher, would score |z| > 20
    stats = [TrainerStats(f"0x{i:040x}", i, 1.5 * (1.35 if i == 7 else 1.0 + 0.01 * (i % 2)), 0.05, 0.02, 0.8) for i in range(8)]
    assert outlier_flags(stats) == []
    assert screen(stats) == []
