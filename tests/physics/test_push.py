"""Push radiation force: beam size from the aperture, force magnitude, and the displacement it makes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shearlab.devices.twin.physics import exact_displacement, push_beam, push_body_force, push_duration_s
from shearlab.protocols.phantoms import cast_batch
from shearlab.protocols.sequences import ProbeGeometry, PushSpec

PROBE = ProbeGeometry()


def _half_max_width(axis: np.ndarray, profile: np.ndarray, level: float = 0.5) -> tuple[float, float]:
    """Edges where ``profile`` crosses ``level`` of its peak, linearly interpolated."""
    above = np.flatnonzero(profile >= level * profile.max())
    lo, hi = above[0], above[-1]
    left = np.interp(level * profile.max(), [profile[lo - 1], profile[lo]], [axis[lo - 1], axis[lo]])
    right = np.interp(level * profile.max(), [profile[hi + 1], profile[hi]], [axis[hi + 1], axis[hi]])
    return float(left), float(right)


def test_push_lasts_2000_cycles_at_7_5_mhz() -> None:
    assert push_duration_s(PushSpec(), PROBE) == pytest.approx(2000 / 7.5e6)
    assert push_duration_s(PushSpec(), PROBE) == pytest.approx(267e-6, abs=1e-6)


def test_beam_is_half_a_millimetre_wide_and_within_3_db_from_5_to_15_mm() -> None:
    depth_m = np.linspace(0.0, 30e-3, 3001)
    lateral_m = np.linspace(-2e-3, 2e-3, 4001)
    force = push_body_force(PushSpec(lateral_mm=0.0), PROBE, depth_m, lateral_m)
    focus_row = int(np.argmax(force.max(axis=1)))
    left, right = _half_max_width(lateral_m, force[focus_row])
    assert 0.5e-3 <= right - left <= 0.6e-3
    top, bottom = _half_max_width(depth_m, force[:, force.shape[1] // 2])
    assert top == pytest.approx(5e-3, abs=0.3e-3)
    assert bottom == pytest.approx(15e-3, abs=0.3e-3)
    assert depth_m[focus_row] == pytest.approx(10e-3, abs=0.02e-3)


def test_peak_force_is_twice_alpha_intensity_over_c() -> None:
    beam = push_beam(PushSpec(), PROBE)
    alpha_np_m = 0.5 * 7.5 * 100 / (20 / math.log(10))  # 0.5 dB/cm/MHz at 7.5 MHz, amplitude Np/m
    assert alpha_np_m == pytest.approx(43.17, abs=0.01)
    assert beam.peak_force_n_m3 == pytest.approx(2 * alpha_np_m * beam.peak_intensity_w_m2 / 1540.0)
    # a typical ARFI in-situ focal intensity, hundreds to a couple of thousand W/cm^2
    assert 100e4 <= beam.peak_intensity_w_m2 <= 2000e4


def test_force_scales_with_voltage_squared_and_follows_the_push_location() -> None:
    depth_m = np.array([10e-3])
    lateral_m = np.linspace(-10e-3, 10e-3, 2001)
    full = push_body_force(PushSpec(lateral_mm=4.0, voltage_v=120.0), PROBE, depth_m, lateral_m)
    half = push_body_force(PushSpec(lateral_mm=4.0, voltage_v=60.0), PROBE, depth_m, lateral_m)
    np.testing.assert_allclose(half, full / 4.0, rtol=1e-9, atol=1e-12 * full.max())
    assert lateral_m[np.argmax(full[0])] == pytest.approx(4e-3, abs=1e-5)


@pytest.mark.parametrize(("concentration_pct", "low_um", "high_um"), [(5.0, 8.0, 20.0), (17.5, 2.0, 8.0)])
def test_peak_displacement_is_micrometres_larger_in_soft_gel(concentration_pct: float, low_um: float, high_um: float) -> None:
    """SPEC §4: a few um in stiff gel to ~15 um in soft gel (a magnitude check, not a fit)."""
    truth = cast_batch("push-magnitude", concentration_pct)
    beam = push_beam(PushSpec(), PROBE)
    u = exact_displacement(
        mu_pa=truth.mu_dynamic_pa,
        eta_pa_s=truth.eta_pa_s,
        rho_kg_m3=truth.density_kg_m3,
        body_force=beam.body_force_n_m3,
        duration_s=beam.duration_s,
        depth_m=np.array([9.96e-3, 10.04e-3]),
        lateral_m=np.arange(-10, 11) * 0.055e-3,
        times_s=np.arange(1, 41) * 25e-6,
    )
    assert low_um <= u.max() * 1e6 <= high_um
