"""Exact shear wave in a homogeneous Kelvin-Voigt medium (SPEC §4).

Model: the axial displacement ``u(z, x, t)`` in the image plane of an unbounded medium, the push a
line source along elevation:

    rho u_tt = mu lap u + eta lap u_t + f(z, x) g(t),    g = 1 for 0 <= t < T, else 0.

In the spatial Fourier domain each wavenumber ``k`` is a damped oscillator
``u'' + 2 gamma u' + w0^2 u = f_k g(t) / rho`` with ``w0^2 = mu k^2 / rho`` and
``gamma = eta k^2 / (2 rho)``; its response to the rectangular pulse is ``s(t) - s(t - T)`` with the
closed-form step response ``s``. The force is sampled on a periodic grid at the image spacing that
holds the image and the force, with a period long enough that no periodic image of the source
reaches the image before the last frame, so the result equals the unbounded-medium solution
sampled on the image grid (the force is band-limited well inside the grid's Nyquist band, and
coefficients below ``SPECTRUM_TOLERANCE`` of the peak are dropped).

Time convention: ``t = 0`` is the push start.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft

# Fourier coefficients of the force below this fraction of the largest are dropped.
SPECTRUM_TOLERANCE = 1e-6
# Waves reach at most this multiple of the phase speed at 1/T times the last frame time (see wave_reach_m).
WRAP_SPEED_FACTOR = 1.15
# The force's support is searched this far beyond the output axes, m, and cut at this fraction.
SUPPORT_SEARCH_M = 40e-3
SUPPORT_FRACTION = 1e-8
# Below this |w_d t| the damped sine is evaluated by its series (the exponential form cancels).
_SERIES_LIMIT = 1e-4

BodyForce = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``force(depth_m, lateral_m) -> (depth, lateral)`` body force in N/m^3 on the grid of two 1-D axes."""


def voigt_phase_speed_m_s(mu_pa: float, eta_pa_s: float, rho_kg_m3: float, omega_rad_s: np.ndarray | float) -> np.ndarray:
    """Kelvin-Voigt phase speed ``sqrt(2 (mu^2 + w^2 eta^2) / (rho (mu + sqrt(mu^2 + w^2 eta^2))))``, m/s."""
    modulus = np.hypot(mu_pa, np.asarray(omega_rad_s, dtype=np.float64) * eta_pa_s)
    return np.sqrt(2.0 * modulus**2 / (rho_kg_m3 * (mu_pa + modulus)))


def _step_response(w0_sq: np.ndarray, gamma: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Oscillator step response ``s(t)`` per wavenumber (unit forcing), zero for ``t <= 0``."""
    t = np.maximum(t_s, 0.0)
    wd = np.sqrt((w0_sq - gamma**2).astype(np.complex128))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e_plus = np.exp((-gamma + 1j * wd) * t)
        e_minus = np.exp((-gamma - 1j * wd) * t)
        damped_cos = 0.5 * (e_plus + e_minus)
        damped_sin = (e_plus - e_minus) / (2j * wd)
        near = np.abs(wd * t) < _SERIES_LIMIT
        damped_sin = np.where(near, t * np.exp(-gamma * t) * (1.0 - (wd * t) ** 2 / 6.0), damped_sin)
        response = (1.0 - (damped_cos + gamma * damped_sin).real) / w0_sq
    # k = 0: free mass under a unit force.
    response = np.where(w0_sq == 0.0, 0.5 * t**2, response)
    return np.where(t_s > 0.0, response, 0.0)


def wave_reach_m(*, mu_pa: float, eta_pa_s: float, rho_kg_m3: float, duration_s: float, t_max_s: float) -> float:
    """How far a wave launched by a push of ``duration_s`` can travel by ``t_max_s``, m.

    The phase speed at ``1 / T`` (the push spectrum's first null; the wave's energy lies below it)
    times ``WRAP_SPEED_FACTOR``: viscosity makes faster, higher-frequency components, but they are
    damped out by then.
    """
    omega_top = 2.0 * np.pi / max(duration_s, 1e-6)
    speed = float(voigt_phase_speed_m_s(mu_pa, eta_pa_s, rho_kg_m3, omega_top))
    return WRAP_SPEED_FACTOR * speed * max(t_max_s, 0.0)


def force_support_m(
    body_force: BodyForce, depth_m: np.ndarray, lateral_m: np.ndarray, *, fraction: float,
    search_m: float = SUPPORT_SEARCH_M,
) -> tuple[float, float, float, float]:
    """Box ``(depth_lo, depth_hi, lateral_lo, lateral_hi)``, m, where the force exceeds ``fraction``
    of its peak, searched within ``search_m`` of the given axes at twice their spacing."""
    axes = []
    for axis in (depth_m, lateral_m):
        step = 2.0 * float(axis[1] - axis[0])
        axes.append(np.arange(axis[0] - search_m, axis[-1] + search_m + step, step))
    force = np.abs(body_force(*axes))
    big = force >= fraction * force.max()
    rows = np.flatnonzero(big.any(axis=1))
    cols = np.flatnonzero(big.any(axis=0))
    return axes[0][rows[0]], axes[0][rows[-1]], axes[1][cols[0]], axes[1][cols[-1]]


def _periodic_axis(axis_m: np.ndarray, lo_m: float, hi_m: float, reach_m: float) -> tuple[np.ndarray, int]:
    """Periodic samples at the spacing of ``axis_m`` that hold ``[lo_m, hi_m]`` (the axis and the
    force) and repeat no sooner than ``reach_m`` beyond it. Returns the coordinates, the axis first,
    and the period in samples."""
    step = float(axis_m[1] - axis_m[0])
    before = max(int(np.ceil((axis_m[0] - lo_m) / step)), 0)
    after = max(int(np.ceil((hi_m - axis_m[-1]) / step)), 0)
    n = scipy.fft.next_fast_len(before + axis_m.size + after + int(np.ceil(reach_m / step)), real=True)
    index = np.arange(n)
    return axis_m[0] + step * np.where(index < n - before, index, index - n), n


def exact_displacement(
    *,
    mu_pa: float,
    eta_pa_s: float,
    rho_kg_m3: float,
    body_force: BodyForce,
    duration_s: float,
    depth_m: np.ndarray,
    lateral_m: np.ndarray,
    times_s: np.ndarray,
) -> np.ndarray:
    """Axial displacement of a homogeneous Kelvin-Voigt medium under a pulsed body force.

    Parameters
    ----------
    mu_pa, eta_pa_s, rho_kg_m3 : float
        Shear modulus (Pa), shear viscosity (Pa s), density (kg/m^3).
    body_force : BodyForce
        The force field, N/m^3; it acts from ``t = 0`` for ``duration_s`` seconds.
    depth_m, lateral_m : np.ndarray
        Evenly spaced output axes, shapes ``(depth,)`` and ``(lateral,)``, m.
    times_s : np.ndarray
        Output times from the push start, shape ``(frames,)``, s.

    Returns
    -------
    np.ndarray
        float32 displacement in m, shape ``(frames, depth, lateral)``, positive away from the probe.
    """
    if mu_pa <= 0 or rho_kg_m3 <= 0 or eta_pa_s < 0 or duration_s < 0:
        raise ValueError("exact_displacement needs mu > 0, rho > 0, eta >= 0, duration >= 0")
    if depth_m.size < 2 or lateral_m.size < 2:
        raise ValueError("exact_displacement needs at least two depth and two lateral samples")
    times = np.asarray(times_s, dtype=np.float64)
    t_max = float(times.max(initial=0.0))
    reach_m = wave_reach_m(mu_pa=mu_pa, eta_pa_s=eta_pa_s, rho_kg_m3=rho_kg_m3, duration_s=duration_s, t_max_s=t_max)
    # A boundary's mirror image of the push can lie anywhere within reach of the image.
    z_lo, z_hi, x_lo, x_hi = force_support_m(body_force, depth_m, lateral_m, fraction=SUPPORT_FRACTION,
                                             search_m=max(SUPPORT_SEARCH_M, reach_m))
    depth_pad, n_z = _periodic_axis(depth_m, z_lo, z_hi, reach_m)
    lateral_pad, n_x = _periodic_axis(lateral_m, x_lo, x_hi, reach_m)
    dz = float(depth_m[1] - depth_m[0])
    dx = float(lateral_m[1] - lateral_m[0])

    spectrum = scipy.fft.rfft2(body_force(depth_pad, lateral_pad), workers=1)
    magnitude = np.abs(spectrum)
    keep = magnitude.max() * SPECTRUM_TOLERANCE
    if magnitude[n_z // 2].max() > keep or magnitude[:, -1].max() > keep:
        raise ValueError(
            "the output grid is too coarse to resolve the force: use evenly spaced depth and lateral "
            "axes no coarser than the image grid's"
        )
    rows = np.flatnonzero(magnitude.max(axis=1) > keep)
    n_cols = int(np.flatnonzero(magnitude.max(axis=0) > keep).max(initial=-1)) + 1
    spectrum = spectrum[np.ix_(rows, np.arange(n_cols))]

    kz = 2.0 * np.pi * scipy.fft.fftfreq(n_z, dz)[rows]
    kx = 2.0 * np.pi * scipy.fft.rfftfreq(n_x, dx)[:n_cols]
    k_sq = kz[:, None] ** 2 + kx[None, :] ** 2
    w0_sq = mu_pa * k_sq / rho_kg_m3
    gamma = eta_pa_s * k_sq / (2.0 * rho_kg_m3)
    t = times[:, None, None]
    pulse = _step_response(w0_sq, gamma, t) - _step_response(w0_sq, gamma, t - duration_s)
    coefficients = (spectrum / rho_kg_m3) * pulse

    # Inverse along depth only for the kept rows and the image rows (a small DFT matrix), then
    # along lateral with one real inverse FFT per image row.
    rows_signed = scipy.fft.fftfreq(n_z)[rows] * n_z
    phase = np.exp(2j * np.pi * np.outer(np.arange(depth_m.size), rows_signed) / n_z) / n_z
    by_depth = np.matmul(phase.astype(np.complex64), coefficients.astype(np.complex64))
    half = np.zeros((times.size, depth_m.size, n_x // 2 + 1), dtype=np.complex64)
    half[:, :, :n_cols] = by_depth
    field = scipy.fft.irfft(half, n=n_x, axis=-1, workers=1)
    return np.ascontiguousarray(field[:, :, : lateral_m.size], dtype=np.float32)


__all__ = ["BodyForce", "exact_displacement", "force_support_m", "voigt_phase_speed_m_s", "wave_reach_m"]
