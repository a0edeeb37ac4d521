"""Adaptive probe positions: inside the same workspace as the random draw, towards the uncertain gel, and the
same picks from the same seed and maps."""

import numpy as np
import pytest

from shearlab.protocols.adaptive import AdaptivePicker, StripObservation, strip_sigma
from shearlab.protocols.plans import AdaptiveSettings, BlockTarget
from shearlab.protocols.positions import probe_positions_mm

BLOCK = BlockTarget(name="block_10p0", batch_id="B1", concentration_pct=10.0, x_mm=50.0, y_mm=200.0)
OFFSETS = (-4.5, -1.5, 1.5, 4.5)


def _picker(**settings: float) -> AdaptivePicker:
    return AdaptivePicker(BLOCK, 25.0, 7, AdaptiveSettings(**settings), OFFSETS)


def _run(picker: AdaptivePicker, sigma_at, n: int) -> np.ndarray:
    """``n`` picks, each observed through ``sigma_at(x_mm, y_mm) -> relative sigma``."""
    picks = []
    for _ in range(n):
        xy = picker.next_position()
        picks.append(xy)
        picker.observe(StripObservation(xy, OFFSETS, tuple(sigma_at(xy[0] + dx, xy[1]) for dx in OFFSETS)))
    return np.array(picks)


def _stiff_corner(x_mm: float, y_mm: float) -> float:
    """A model unsure near (70, 220) mm, sure elsewhere."""
    return 0.05 + 0.4 * np.exp(-((x_mm - 70) ** 2 + (y_mm - 220) ** 2) / (2 * 8.0**2))


def test_picks_go_where_the_model_is_unsure_and_stay_inside_the_margins():
    picks = _run(_picker(), _stiff_corner, 12)
    random = probe_positions_mm(BLOCK, 12, edge_margin_mm=25.0, seed=7)
    assert np.all(np.abs(picks - [50.0, 200.0]) <= 25.0 + 1e-9)
    np.testing.assert_allclose(picks[0], random[0])
    distance = np.linalg.norm(picks - [70.0, 220.0], axis=1)
    assert np.median(distance[4:]) < 0.6 * np.median(np.linalg.norm(random - [70.0, 220.0], axis=1))
    spacing = np.linalg.norm(picks[:, None] - picks[None], axis=-1) + np.eye(len(picks)) * 1e9
    assert spacing.min() >= AdaptiveSettings().min_spacing_mm


def test_same_seed_and_maps_give_the_same_picks_and_a_flat_model_explores():
    first, again = _run(_picker(), _stiff_corner, 6), _run(_picker(), _stiff_corner, 6)
    np.testing.assert_array_equal(first, again)
    # A model equally sure everywhere: the picks spread out, the unexplored gel is the uncertain part.
    flat = _run(_picker(exploration=2.0), lambda x, y: 0.1, 6)
    gaps = np.linalg.norm(flat[:, None] - flat[None], axis=-1) + np.eye(6) * 1e9
    assert gaps.min() > 8.0


def test_strips_are_medians_of_the_sigma_map_with_their_centres():
    sigma = np.tile(np.array([0.1] * 30 + [0.3] * 30), (5, 1))
    sigma[:, :5] = np.nan
    offsets, values = strip_sigma(sigma, np.linspace(-6, 6, 60), strips=2)
    assert offsets == pytest.approx((-3.05, 3.05), abs=0.11) and values == pytest.approx((0.1, 0.3))
