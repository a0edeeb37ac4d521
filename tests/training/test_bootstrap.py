"""Intervals from resampling probe positions: known answers and the paired difference."""

import numpy as np
import pytest

from shearlab.training.bootstrap import GroupedErrors, difference_interval, mae_interval


def test_mae_pools_every_pixel_and_ignores_missing_ones():
    errors = GroupedErrors.from_pixels([np.array([1.0, 3.0, np.nan]), np.array([5.0])])
    # (1 + 3 + 5) / 3, the NaN (a failed estimate) left out.
    assert errors.mean() == pytest.approx(3.0)
    np.testing.assert_array_equal(errors.count, [2, 1])


def test_interval_matches_the_spread_between_positions_not_pixels():
    """Ten positions of 1000 pixels each whose per-position MAE is drawn with sd 2 kPa: the interval's
    half-width is about 1.96 x 2 / sqrt(10) = 1.24 kPa, whatever the pixel count."""
    rng = np.random.default_rng(0)
    position_mae = 10 + 2 * rng.standard_normal(10)
    pixels = [np.full(1000, m) + rng.normal(0, 0.01, 1000) for m in position_mae]
    interval = mae_interval(GroupedErrors.from_pixels(pixels), seed=1)
    assert interval.low < interval.value < interval.high
    assert (interval.high - interval.low) / 2 == pytest.approx(1.96 * position_mae.std() / np.sqrt(10), rel=0.3)


def test_one_position_has_no_interval():
    interval = mae_interval(GroupedErrors.from_pixels([np.array([2.0, 4.0])]))
    assert interval.value == 3.0 and np.isnan(interval.low) and np.isnan(interval.high)


def test_paired_difference_sees_a_consistent_gap_that_noise_between_positions_hides():
    """Method a is 1 kPa better than b at every position, while positions differ by 5 kPa: the paired
    interval excludes zero though each method's own interval is wide."""
    rng = np.random.default_rng(2)
    base = 10 + 5 * rng.standard_normal(12)
    a = GroupedErrors.from_pixels([np.full(50, m) for m in base])
    b = GroupedErrors.from_pixels([np.full(50, m + 1.0) for m in base])
    diff = difference_interval(a, b)
    assert diff.value == pytest.approx(-1.0)
    assert diff.high < 0
    own = mae_interval(a)
    assert own.high - own.low > 4
    with pytest.raises(ValueError, match="same groups"):
        difference_interval(a, GroupedErrors.from_pixels([np.ones(3)]))
