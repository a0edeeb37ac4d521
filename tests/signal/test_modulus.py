"""Eq. 1 and the two alpha rules: known answers."""

import numpy as np
import pytest

from shearlab.protocols.signal.modulus import fit_alpha, modulus_to_speed_m_s, speed_to_modulus_kpa


def test_eq1_and_its_inverse():
    # E = alpha rho 2 (1 + nu) c^2 = alpha * 3000 c^2 Pa.
    assert speed_to_modulus_kpa(np.array([2.0]), alpha=0.75)[0] == pytest.approx(9.0)
    assert modulus_to_speed_m_s(9.0, alpha=0.75) == pytest.approx(2.0)
    assert np.isnan(speed_to_modulus_kpa(np.array([np.nan]))[0])


def test_paper_rule_matches_the_mean_and_the_robust_rule_the_median_outside_the_push():
    speeds = np.array([2.0, 2.0, np.nan, 4.0, 8.0])
    outside = np.array([True, True, True, True, False])
    # Unscaled moduli 12, 12, 48, 192 kPa: mean 66 kPa, so 18 kPa needs alpha = 18 / 66.
    assert fit_alpha(speeds, 18.0) == pytest.approx(18.0 / 66.0)
    # The pixel at the push (192 kPa) is left out and the median of 12, 12, 48 is 12: alpha = 1.5.
    assert fit_alpha(speeds, 18.0, rule="robust", outside_push=outside) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="mask"):
        fit_alpha(speeds, 18.0, rule="robust")
    with pytest.raises(ValueError, match="no finite"):
        fit_alpha(np.array([np.nan]), 18.0)
    with pytest.raises(ValueError, match="rule"):
        fit_alpha(speeds, 18.0, rule="median")  # type: ignore[arg-type]
