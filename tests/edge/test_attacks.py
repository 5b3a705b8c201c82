"""Attack modes (docs/protocol.md 8.1): what each does to the outputs, on how many tokens, reproducibly."""
from __future__ import annotations

import numpy as np
import pytest

from bmoe_py.edge.attacks import ATTACK_MODES, AttackConfig, Attacker

OUTPUTS = np.random.default_rng(0).integers(-60, 60, (400, 8), dtype=np.int8)


def attack(mode: str, strength: float = 1.0, fraction: float = 1.0, seed: int = 0, outputs=OUTPUTS):
    return Attacker(AttackConfig(mode, strength, fraction, seed))(outputs)


def test_no_attack_returns_the_outputs_untouched():
    returned, changed = attack("none")
    assert returned is OUTPUTS and not changed.any()


@pytest.mark.parametrize("mode", [m for m in ATTACK_MODES if m != "none"])
def test_every_mode_changes_int8_outputs_and_keeps_them_int8(mode):
    returned, changed = attack(mode)
    assert returned.dtype == np.int8 and returned.shape == OUTPUTS.shape
    assert changed.mean() > 0.9
    assert (changed == (returned != OUTPUTS).any(axis=1)).all()


def test_fraction_bounds_the_share_of_manipulated_tokens():
    _, changed = attack("random", fraction=0.25)
    assert 0.15 < changed.mean() < 0.35


def test_fraction_zero_manipulates_nothing():
    returned, changed = attack("gaussian", fraction=0.0)
    assert not changed.any() and (returned == OUTPUTS).all()


def test_signflip_negates_and_scale_multiplies():
    np.testing.assert_array_equal(attack("signflip")[0], -OUTPUTS)
    np.testing.assert_array_equal(attack("scale", strength=0.5)[0], np.clip(np.rint(1.5 * OUTPUTS), -128, 127))


def test_targeted_moves_every_token_the_same_way():
    returned, _ = attack("targeted", strength=0.5, outputs=np.zeros((50, 8), dtype=np.int8))
    assert (returned == returned[0]).all() and returned[0].any()


def test_the_same_seed_gives_the_same_attack():
    a, b, c = attack("gaussian", seed=7), attack("gaussian", seed=7), attack("gaussian", seed=8)
    assert (a[0] == b[0]).all() and not (a[0] == c[0]).all()


def test_float_outputs_stay_float32():
    outputs = np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32)
    returned, changed = attack("gaussian", outputs=outputs)
    assert returned.dtype == np.float32 and changed.all()


def test_unknown_mode_and_bad_fraction_are_refused():
    with pytest.raises(ValueError, match="attack mode"):
        AttackConfig("bitflip")
    with pytest.raises(ValueError, match="fraction"):
        AttackConfig("gaussian", fraction=1.5)
