"""Time-of-flight (ToF) shear-wave speed baseline, the paper's chain (SPEC §2, after Song et al.).

1. 3D mean filter, 5 px on every axis (speckle);
2. directional filter in the ``(f, kz, kx)`` domain: keep waves travelling along +lateral (or -lateral),
   within ``max_off_axis_deg`` of the lateral axis, below ``max_frequency_hz``;
3. for a pixel, the time signals ``span_px // 2`` pixels to its left and right (``span_px = 65``: the two
   points and the pixel lie in a 65 px span, 64 pitches apart), Tukey-windowed, cross-correlated,
   interpolated x10, delay from the correlation peak (parabolic refinement), speed = distance / delay,
   assigned to the centre pixel;
4. speeds outside 0.1-10 m/s are failed estimates: NaN, counted, never zero.

Interpolating both signals by 10 (band-limited, Fourier) and then correlating equals correlating and then
interpolating the correlation by 10 the same way; the second is 10x cheaper and is what is done here.

Each pixel uses the direction of travel away from the push: pixels right of the push the +lateral
filtered volume, pixels left of it the -lateral one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter, uniform_filter
from scipy.signal.windows import tukey

from shearlab.protocols.sequences import ImageGrid
from shearlab.protocols.signal.modulus import speed_to_modulus_kpa

# Depth rows correlated per chunk: bounds memory at ~(rows x lateral x 700) complex numbers.
_ROWS_PER_CHUNK = 32


@dataclass(frozen=True)
class TofSettings:
    """Parameters of the ToF chain (paper values; the filter band and Tukey taper are ours)."""

    mean_filter_px: int = 5
    span_px: int = 65
    upsample: int = 10
    tukey_alpha: float = 0.25
    max_frequency_hz: float = 2000.0
    max_off_axis_deg: float = 60.0
    time_pad_factor: int = 2
    lateral_pad_factor: int = 2
    min_speed_m_s: float = 0.1
    max_speed_m_s: float = 10.0


@dataclass(frozen=True)
class TofResult:
    """Speed map ``(depth, lateral)`` m/s, NaN where failed or not attempted, and where it was attempted."""

    speed_m_s: np.ndarray
    attempted: np.ndarray

    @property
    def failed(self) -> np.ndarray:
        failed: np.ndarray = self.attempted & ~np.isfinite(self.speed_m_s)
        return failed

    @property
    def failure_fraction(self) -> float:
        """Failed estimates over attempted ones."""
        n = int(self.attempted.sum())
        return float(self.failed.sum()) / n if n else float("nan")


def directional_filter(volume: np.ndarray, *, direction: int, dt_s: float, dz_m: float, dx_m: float,
                       settings: TofSettings = TofSettings()) -> np.ndarray:
    """Keep waves travelling towards ``direction`` (+1: +lateral, -1: -lateral), ``(frames, depth, lateral)``.

    Time is zero-padded to twice its length first so the filter does not wrap the end of the record onto
    its start. Returns float32 of the input's shape.
    """
    if direction not in (1, -1):
        raise ValueError("direction must be +1 or -1")
    frames, depth, lateral = volume.shape
    shape = (settings.time_pad_factor * frames, depth, settings.lateral_pad_factor * lateral)
    spectrum = scipy.fft.rfftn(volume, s=shape, axes=(0, 1, 2), workers=2)
    f = scipy.fft.fftfreq(shape[0], dt_s)[:, None, None]
    kz = scipy.fft.fftfreq(depth, dz_m)[None, :, None]
    kx = scipy.fft.rfftfreq(shape[2], dx_m)[None, None, :]
    # A component exp(2 pi i (f t + kx x)) moves at dx/dt = -f / kx: towards +x when f and kx differ in sign.
    keep = ((-direction * f * kx > 0) & (np.abs(f) <= settings.max_frequency_hz)
            & (np.abs(kz) <= np.tan(np.radians(settings.max_off_axis_deg)) * np.abs(kx)))
    out: np.ndarray = scipy.fft.irfftn(spectrum * keep, s=shape, axes=(0, 1, 2), workers=2)
    return out[:frames, :, :lateral].astype(np.float32)


def _delays_s(near: np.ndarray, far: np.ndarray, *, dt_s: float, settings: TofSettings) -> np.ndarray:
    """Delay of ``far`` after ``near`` from the peak of their cross-correlation; ``(frames, ...)`` -> ``(...)``."""
    frames = near.shape[0]
    taper = tukey(frames, settings.tukey_alpha).reshape(-1, *([1] * (near.ndim - 1)))
    n = 2 * frames
    cross = np.conj(scipy.fft.rfft(near * taper, n=n, axis=0)) * scipy.fft.rfft(far * taper, n=n, axis=0)
    fine = settings.upsample * n
    corr = scipy.fft.irfft(cross, n=fine, axis=0)
    peak = np.argmax(corr, axis=0)
    # Parabolic refinement around the peak (circular neighbours: the correlation is periodic in n).
    y0 = np.take_along_axis(corr, ((peak - 1) % fine)[None], 0)[0]
    y1 = np.take_along_axis(corr, peak[None], 0)[0]
    y2 = np.take_along_axis(corr, ((peak + 1) % fine)[None], 0)[0]
    denom = y0 - 2 * y1 + y2
    offset = np.divide(0.5 * (y0 - y2), denom, out=np.zeros_like(denom), where=denom < 0)
    lag: np.ndarray = np.where(peak > fine // 2, peak - fine, peak) + offset
    return lag * dt_s / settings.upsample


def tof_speed_map(volume_um: np.ndarray, grid: ImageGrid, *, push_lateral_m: float,
                  settings: TofSettings = TofSettings()) -> TofResult:
    """Shear-wave speed at every pixel with a full span on both sides.

    Parameters
    ----------
    volume_um
        Displacement ``(frames, depth, lateral)``, um (any unit: only delays matter).
    grid
        Pixel pitch and frame times (``protocols.sequences.ImageGrid``).
    push_lateral_m
        Lateral push position, m, in the grid's lateral coordinates.

    Returns
    -------
    TofResult
        ``speed_m_s`` ``(depth, lateral)`` float32, NaN where failed or where the span does not fit.
    """
    volume = np.asarray(volume_um, dtype=np.float32)
    if volume.shape != grid.shape:
        raise ValueError(f"volume {volume.shape} does not match the grid {grid.shape}")
    if settings.span_px % 2 == 0 or settings.span_px < 3:
        raise ValueError("span_px must be odd and >= 3 so the estimate has a centre pixel")
    frames, depth, lateral = volume.shape
    half = settings.span_px // 2
    if lateral <= 2 * half:
        raise ValueError(f"{lateral} lateral pixels cannot hold a {settings.span_px} px span")
    dt_s = float(np.mean(np.diff(grid.frame_times_s)))
    smoothed = uniform_filter(volume, size=settings.mean_filter_px, mode="nearest")
    distance_m = 2 * half * abs(grid.dx_m)
    centres = np.arange(half, lateral - half)
    right_of_push = grid.lateral_m[centres] >= push_lateral_m
    speed = np.full((depth, lateral), np.nan, dtype=np.float32)
    for direction, columns in ((1, centres[right_of_push]), (-1, centres[~right_of_push])):
        if columns.size == 0:
            continue
        filtered = directional_filter(smoothed, direction=direction, dt_s=dt_s, dz_m=grid.dz_m,
                                      dx_m=grid.dx_m, settings=settings)
        # The wave reaches the point nearer the push first.
        near_cols, far_cols = (columns - half, columns + half) if direction == 1 else (columns + half, columns - half)
        for row in range(0, depth, _ROWS_PER_CHUNK):
            rows = slice(row, min(row + _ROWS_PER_CHUNK, depth))
            delay = _delays_s(filtered[:, rows][:, :, near_cols], filtered[:, rows][:, :, far_cols],
                              dt_s=dt_s, settings=settings)
            with np.errstate(divide="ignore", invalid="ignore"):
                c = distance_m / delay
            valid = (c >= settings.min_speed_m_s) & (c <= settings.max_speed_m_s)
            speed[rows, columns] = np.where(valid, c, np.nan)
    attempted = np.zeros((depth, lateral), dtype=bool)
    attempted[:, centres] = True
    return TofResult(speed_m_s=speed, attempted=attempted)


def smooth_map(values: np.ndarray, grid: ImageGrid, *, kernel_mm: float = 2.0) -> np.ndarray:
    """NaN-aware Gaussian smoothing of a ``(depth, lateral)`` map over a ``kernel_mm`` square kernel.

    The kernel spans +/- 2 sigma, so sigma = kernel_mm / 4 on each axis. NaN pixels are left out of the
    average (normalised convolution), which also fills small holes, as the paper intends; pixels with no
    finite value within the kernel stay NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    sigma_px = (kernel_mm * 1e-3 / 4 / grid.dz_m, kernel_mm * 1e-3 / 4 / abs(grid.dx_m))
    finite = np.isfinite(values)
    weight = gaussian_filter(finite.astype(np.float64), sigma_px, mode="constant", truncate=2.0)
    total = gaussian_filter(np.where(finite, values, 0.0), sigma_px, mode="constant", truncate=2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = total / weight
    # Pixels whose neighbourhood is mostly empty would be extrapolated from a fringe: keep them NaN.
    return np.where(weight > 1e-3, out, np.nan).astype(np.float32)


def compound_maps(maps: list[np.ndarray]) -> np.ndarray:
    """NaN-aware mean of per-push maps ``(pushes, depth, lateral)`` -> ``(depth, lateral)``."""
    stack = np.stack(maps).astype(np.float64)
    count = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


def tof_elasticity_map(volumes_um: list[np.ndarray], grid: ImageGrid, *, push_lateral_m: list[float],
                       alpha: float, settings: TofSettings = TofSettings(), kernel_mm: float = 2.0) -> np.ndarray:
    """Compounded ToF Young's modulus map, kPa ``(depth, lateral)``: per push speed -> modulus -> smooth -> mean."""
    if len(volumes_um) != len(push_lateral_m):
        raise ValueError("one push position per volume")
    maps = [smooth_map(speed_to_modulus_kpa(tof_speed_map(v, grid, push_lateral_m=x, settings=settings).speed_m_s,
                                       alpha=alpha), grid, kernel_mm=kernel_mm)
            for v, x in zip(volumes_um, push_lateral_m, strict=True)]
    return compound_maps(maps)
