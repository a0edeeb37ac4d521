import numpy as np
import pytest

from shearlab.training.metrics import (
    dice,
    dice_curve,
    error_summary,
    failure_fraction,
    mae_by_group,
    mae_kpa,
    pearson,
)


def test_mae_and_std_by_hand():
    estimate = np.array([10.0, 12.0, np.nan, 20.0])
    truth = np.array([11.0, 10.0, 5.0, 20.0])
    # |errors| over finite pairs: 1, 2, 0 -> mean 1, population std sqrt(2/3).
    mean, std = mae_kpa(estimate, truth)
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(np.sqrt(2 / 3))


def test_pearson_by_hand():
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # x = (1, 2, 3), y = (1, 3, 2): cov = 0.5 * 2/3 ... r = 0.5 by hand.
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    assert np.isnan(pearson(np.array([1.0, 1.0]), np.array([1.0, 2.0])))


def test_dice_and_curve_by_hand():
    estimate = np.array([[80.0, 80.0, 40.0], [80.0, 40.0, np.nan]])
    mask = np.array([[True, True, True], [False, False, True]])
    # Over finite pixels: predicted {00, 01, 10}, truth {00, 01, 02}: overlap 2 -> 2*2/(3+3).
    assert dice(estimate, mask, 67.38) == pytest.approx(2 / 3)
    # Threshold 30: predicted all 5 finite pixels, truth 3: 2*3/(5+3).
    # Threshold 100: predicted none: 0.
    curve = dice_curve(estimate, mask, [30.0, 67.38, 100.0])
    np.testing.assert_allclose(curve, [6 / 8, 2 / 3, 0.0])
    assert dice(np.zeros((2, 2)), np.zeros((2, 2), bool), 10.0) == 1.0


def test_failure_fraction_and_summary():
    estimates = np.array([1.0, np.nan, 3.0, np.nan])
    assert failure_fraction(estimates) == 0.5
    assert failure_fraction(estimates, attempted=np.array([True, True, True, False])) == pytest.approx(1 / 3)
    summary = error_summary(estimates, np.array([1.0, 1.0, 1.0, 1.0]))
    assert summary["mae_kpa"] == pytest.approx(1.0) and summary["n"] == 2
    assert summary["missing_fraction"] == 0.5


def test_mae_by_group():
    groups = np.array([7.5, 7.5, 15.0])
    out = mae_by_group(np.array([1.0, 3.0, 10.0]), np.array([2.0, 2.0, 4.0]), groups)
    assert out[7.5] == (1.0, 0.0) and out[15.0] == (6.0, 0.0)
