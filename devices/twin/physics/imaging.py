"""Ultrasound image formation of the twin scanner: speckle, point-spread function, baseband IQ (SPEC §4).

Model
-----
The phantom holds many point scatterers with circular complex Gaussian amplitudes: each model
scatterer stands for the many unresolved graphite particles around it (the phantom holds far more
than a simulation can afford), whose summed echo is circular Gaussian. Speckle is then fully developed
at the ~18 scatterers per resolution cell used here; real Gaussian amplitudes at that density would
leave it measurably short of the Rayleigh limit (mean/std of the envelope ~2 % low). The pulse-echo
spectrum is Gaussian with centre ``f0`` and standard deviation ``sigma_f`` (from the -6 dB fractional
bandwidth). Round-trip attenuation ``exp(-alpha f z)`` keeps it Gaussian but moves its centre down to
``f_c(z) = f0 - alpha sigma_f^2 z``: the downshift that Loupas' mean-frequency estimate corrects.
Demodulating the RF with ``exp(-j 2 pi f0 t)`` (``t = 2 z / c``) gives, for a scatterer at depth ``z_s``,
the baseband echo at depth ``z``::

    A(z_s) env(z - z_s) exp(-j 2 k0 z_s) exp(-j beta (z^2 - z_s^2))

with ``env(u) = exp(-u^2 / (2 sigma_z^2))``, ``sigma_z = c / (4 pi sigma_f)`` (55 um at 70 % of 7.5 MHz),
``k0 = 2 pi f0 / c``, ``beta = 2 pi alpha sigma_f^2 / c`` and
``A(z) = exp(-alpha f0 z + alpha^2 sigma_f^2 z^2 / 2)``. The exact echo also carries
``exp(j beta (z - z_s)^2)``; over the PSF support (|z - z_s| < 0.25 mm) that is below 10 mrad at
0.5 dB/cm/MHz and is dropped. The signal is formed at baseband directly because the 80 um depth pixel is coarser than
lambda / 4: sampling RF there would alias.

Sign convention (shared with ``shearlab.protocols.signal.loupas``): a scatterer that moves *away from the
probe* by ``d`` rotates its echo by ``-2 k_c d``. Displacements are positive away from the probe.

Computation
-----------
Scatterers are stratified: each pixel of a column holds ``scatterers_per_pixel`` scatterers at uniform
random depths inside it, so the echo at row ``i`` only needs the scatterers of rows ``i - H .. i + H``.
With ``v`` a scatterer's offset from its row's centre, ``env(k dz - v)`` factorises into
``exp(-v^2 / 2 sigma^2) q^k exp(-k^2 dz^2 / 2 sigma^2)``, ``q = exp(dz v / sigma^2)``: two exponentials per
scatterer, then 2 H + 1 shifted sums give the exact axial convolution at the pixel positions. The lateral
PSF is a Gaussian applied by FFT along the lateral axis. Scatterer columns are the pixel columns (a
scatterer's position inside its 55 um column is below the 0.13 mm lateral PSF's resolution), and
scatterers only move axially, by the axial displacement at their rest position (first-order Taylor
expansion about their pixel centre). Frames are formed one at a time so the working set (~3 MB per
array) stays in cache; a 36 x 250 x 600 sequence takes a few hundred ms on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage

from shearlab.protocols.sequences import SOUND_SPEED_M_S, ImageGrid, ProbeGeometry

NEPER_PER_DB = math.log(10.0) / 20.0
# Single-angle plane-wave lateral PSF (SPEC §4): Gaussian amplitude, sigma 0.13 mm.
LATERAL_SIGMA_M = 0.13e-3
# Attenuation of graphite-loaded gelatin: SPEC §4's ~0.5 dB/cm/MHz is the usual one-way coefficient
# (the push model in push.py uses it one way too); an echo travels there and back, so round trip 1.0.
ATTENUATION_DB_CM_MHZ = 1.0
# Axial PSF support: taps beyond 3.5 sigma carry < 0.22 % of the amplitude (-53 dB), below the best SNR.
_AXIAL_TRUNCATE_SIGMAS = 3.5
# Lateral padding with scatterers beyond the image edges: the FFT filter is circular, and 4 sigma keeps
# wrapped-around contributions below 0.04 % of the amplitude.
_LATERAL_TRUNCATE_SIGMAS = 4.0
# ~10 scatterers per resolution cell make fully developed speckle; 2 per 80 um x 55 um pixel gives
# ~18 per (axial FWHM x lateral FWHM) cell on the paper's grid.
DEFAULT_SCATTERERS_PER_PIXEL = 2


@dataclass(frozen=True)
class PulseEcho:
    """Pulse-echo properties of the probe in the phantom.

    Attributes
    ----------
    centre_frequency_hz : float
        Transmit centre frequency ``f0``, also the demodulation frequency.
    fractional_bandwidth : float
        -6 dB (half-amplitude) width of the pulse-echo spectrum over ``f0``.
    lateral_sigma_m : float
        Standard deviation of the Gaussian lateral amplitude PSF, m.
    attenuation_db_cm_mhz : float
        Round-trip amplitude attenuation slope, dB / cm / MHz.
    sound_speed_m_s : float
        Speed of sound, m/s.
    """

    centre_frequency_hz: float = 7.5e6
    fractional_bandwidth: float = 0.7
    lateral_sigma_m: float = LATERAL_SIGMA_M
    attenuation_db_cm_mhz: float = ATTENUATION_DB_CM_MHZ
    sound_speed_m_s: float = SOUND_SPEED_M_S

    def __post_init__(self) -> None:
        if self.centre_frequency_hz <= 0 or self.fractional_bandwidth <= 0 or self.sound_speed_m_s <= 0:
            raise ValueError("centre frequency, fractional bandwidth and sound speed must be positive")
        if self.lateral_sigma_m <= 0 or self.attenuation_db_cm_mhz < 0:
            raise ValueError("lateral_sigma_m must be positive and attenuation_db_cm_mhz non-negative")

    @classmethod
    def from_probe(cls, probe: ProbeGeometry, **overrides: float) -> PulseEcho:
        """Pulse-echo properties of ``probe``; ``overrides`` replace any other attribute."""
        return cls(
            centre_frequency_hz=probe.centre_frequency_mhz * 1e6,
            fractional_bandwidth=probe.fractional_bandwidth,
            **overrides,
        )

    @property
    def spectral_sigma_hz(self) -> float:
        """Standard deviation of the Gaussian pulse-echo amplitude spectrum, Hz."""
        return self.fractional_bandwidth * self.centre_frequency_hz / (2.0 * math.sqrt(2.0 * math.log(2.0)))

    @property
    def axial_sigma_m(self) -> float:
        """Standard deviation of the Gaussian axial envelope, m (55 um at 70 % of 7.5 MHz)."""
        return self.sound_speed_m_s / (4.0 * math.pi * self.spectral_sigma_hz)

    @property
    def attenuation_np_m_hz(self) -> float:
        """Round-trip amplitude attenuation ``alpha``, Np / (m Hz)."""
        return self.attenuation_db_cm_mhz * NEPER_PER_DB * 100.0 / 1e6

    @property
    def chirp_rad_m2(self) -> float:
        """``beta = 2 pi alpha sigma_f^2 / c``: the depth chirp of the downshifted baseband echo, rad/m^2."""
        return 2.0 * math.pi * self.attenuation_np_m_hz * self.spectral_sigma_hz**2 / self.sound_speed_m_s

    def centre_frequency_at(self, depth_m: np.ndarray) -> np.ndarray:
        """Centre frequency of echoes from ``depth_m`` after the round trip, Hz, same shape."""
        return self.centre_frequency_hz - self.attenuation_np_m_hz * self.spectral_sigma_hz**2 * np.asarray(depth_m)

    def echo_power(self, depth_m: np.ndarray) -> np.ndarray:
        """Expected noise-free ``|IQ|^2`` at ``depth_m`` (1 without attenuation), same shape."""
        z = np.asarray(depth_m, dtype=np.float64)
        alpha, f0, sf = self.attenuation_np_m_hz, self.centre_frequency_hz, self.spectral_sigma_hz
        return np.exp(-2.0 * alpha * f0 * z + (alpha * sf * z) ** 2)

    def noise_power(self, *, snr_db: float, focus_depth_m: float) -> float:
        """Complex noise power ``E|n|^2`` giving ``snr_db`` against the mean echo power at ``focus_depth_m``."""
        return float(self.echo_power(np.asarray(focus_depth_m))) * 10.0 ** (-snr_db / 10.0)


@dataclass(frozen=True)
class ScattererField:
    """One speckle realisation on an image grid, ready to be imaged at any displacement.

    Arrays have shape ``(scatterers_per_pixel, depth + half_taps, lateral + pad_left + pad_right)``:
    scatterers of the bottom ``half_taps`` rows and of the lateral padding lie outside the image so
    that its edges see full speckle.

    Attributes
    ----------
    grid : ImageGrid
        The image grid.
    pulse : PulseEcho
        Pulse-echo properties.
    offset_m : np.ndarray
        float32, scatterer depth relative to its row's pixel centre, in ``[-dz/2, dz/2)``, m.
    echo : np.ndarray
        complex64, the scatterer's echo weight at rest: amplitude x attenuation x phase.
    phase_slope_rad_m : np.ndarray
        float32, ``2 k_c`` at the scatterer: its echo phase turns by ``-2 k_c d`` when it moves by ``d``.
    half_taps : int
        Rows on either side of a scatterer's own row that its echo reaches; also the number of
        scatterer rows below the image.
    pad_left, pad_right : int
        Scatterer columns beyond the image on either side.
    """

    grid: ImageGrid
    pulse: PulseEcho
    offset_m: np.ndarray
    echo: np.ndarray
    phase_slope_rad_m: np.ndarray
    half_taps: int
    pad_left: int
    pad_right: int


def _half_taps(pulse: PulseEcho, dz_m: float) -> int:
    return math.ceil(_AXIAL_TRUNCATE_SIGMAS * pulse.axial_sigma_m / dz_m + 0.5)


def _mean_axial_energy(half_taps: int, dz_m: float, sigma_m: float) -> float:
    """Mean over a uniform offset in the pixel of sum_k env(k dz - v)^2: the truncated axial energy."""
    v = (np.arange(1024) + 0.5) / 1024 * dz_m - dz_m / 2
    k = np.arange(-half_taps, half_taps + 1)[:, None]
    return float(np.mean(np.sum(np.exp(-((k * dz_m - v) ** 2) / sigma_m**2), axis=0)))


def _lateral_transfer(n_fft: int, dx_m: float, sigma_m: float) -> np.ndarray:
    f = scipy.fft.fftfreq(n_fft)  # cycles per pixel
    sigma_px = sigma_m / dx_m
    return np.exp(-2.0 * (math.pi * sigma_px * f) ** 2).astype(np.float32)


def scatterer_field(
    grid: ImageGrid,
    *,
    seed: int,
    pulse: PulseEcho = PulseEcho(),
    scatterers_per_pixel: int = DEFAULT_SCATTERERS_PER_PIXEL,
    density: np.ndarray | None = None,
) -> ScattererField:
    """Draw the scatterers of one phantom position.

    The same ``seed`` gives the same speckle: speckle belongs to the phantom position, not to the shot.
    Amplitudes are scaled so that the expected noise-free ``|IQ|^2`` equals ``pulse.echo_power(depth)``
    times ``density``.

    Parameters
    ----------
    grid : ImageGrid
        Image grid; depth rows must sample the axial envelope (``dz < 3 sigma_z``).
    seed : int
        Speckle seed of the phantom position.
    pulse : PulseEcho
        Pulse-echo properties.
    scatterers_per_pixel : int
        Scatterers per image pixel (>= 1).
    density : np.ndarray, optional
        Relative scatterer density (echo power per unit volume, mean ~1) on the image grid,
        ``(depth, lateral)``; scatterers outside the image take the nearest edge value.

    Returns
    -------
    ScattererField
    """
    if scatterers_per_pixel < 1:
        raise ValueError(f"scatterers_per_pixel must be >= 1, got {scatterers_per_pixel}")
    dz, dx, sigma_z = grid.dz_m, grid.dx_m, pulse.axial_sigma_m
    if dz >= 3.0 * sigma_z:
        raise ValueError(
            f"depth pixel {dz * 1e6:.0f} um undersamples the {sigma_z * 1e6:.0f} um axial envelope; "
            "use a finer depth grid"
        )
    half_taps = _half_taps(pulse, dz)
    radius = math.ceil(_LATERAL_TRUNCATE_SIGMAS * pulse.lateral_sigma_m / dx)
    n_fft = scipy.fft.next_fast_len(grid.lateral_m.size + 2 * radius)
    pad_left = (n_fft - grid.lateral_m.size) // 2
    pad_right = n_fft - grid.lateral_m.size - pad_left
    shape = (scatterers_per_pixel, grid.depth_m.size + half_taps, n_fft)

    rng = np.random.default_rng(seed)
    offset = (rng.random(shape) - 0.5) * dz
    amplitude = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2.0)

    transfer = _lateral_transfer(n_fft, dx, pulse.lateral_sigma_m).astype(np.float64)
    lateral_energy = float(np.mean(transfer**2))  # Parseval: sum of squared kernel taps
    density_energy = scatterers_per_pixel * _mean_axial_energy(half_taps, dz, sigma_z) * lateral_energy
    z0 = grid.depth_m[0] + dz * np.arange(shape[1])[None, :, None]
    z = z0 + offset
    k0 = 2.0 * math.pi * pulse.centre_frequency_hz / pulse.sound_speed_m_s
    beta = pulse.chirp_rad_m2
    phase = -(2.0 * k0 * z - beta * z**2)
    echo = amplitude * np.sqrt(pulse.echo_power(z) / density_energy) * np.exp(1j * phase)
    if density is not None:
        if density.shape != (grid.depth_m.size, grid.lateral_m.size):
            raise ValueError(f"density must have shape {(grid.depth_m.size, grid.lateral_m.size)}, got {density.shape}")
        rows = np.minimum(np.arange(shape[1]), grid.depth_m.size - 1)
        cols = np.clip(np.arange(shape[2]) - pad_left, 0, grid.lateral_m.size - 1)
        echo *= np.sqrt(np.asarray(density, dtype=np.float64)[np.ix_(rows, cols)])[None]
    return ScattererField(
        grid=grid,
        pulse=pulse,
        offset_m=offset.astype(np.float32),
        echo=echo.astype(np.complex64),
        phase_slope_rad_m=(2.0 * k0 - 2.0 * beta * z).astype(np.float32),
        half_taps=half_taps,
        pad_left=pad_left,
        pad_right=pad_right,
    )


def _scatterer_displacement(field: ScattererField, displacement_m: np.ndarray) -> np.ndarray:
    """Axial displacement at each scatterer, shape of ``field.offset_m``.

    First-order Taylor expansion about the scatterer's pixel centre with the central-difference slope;
    outside the image the displacement continues at its edge value.
    """
    n_depth, n_lateral = displacement_m.shape
    left = field.pad_left
    rows = np.empty(field.offset_m.shape[1:], dtype=np.float32)
    rows[:n_depth, left : left + n_lateral] = displacement_m
    rows[:n_depth, :left] = displacement_m[:, :1]
    rows[:n_depth, left + n_lateral :] = displacement_m[:, -1:]
    rows[n_depth:] = rows[n_depth - 1]
    slope = np.gradient(rows, axis=0)
    return rows + (field.offset_m * np.float32(1.0 / field.grid.dz_m)) * slope


def _frame(field: ScattererField, displacement_m: np.ndarray | None, transfer: np.ndarray) -> np.ndarray:
    """Noise-free IQ of one frame, complex64 (depth, lateral)."""
    sigma = field.pulse.axial_sigma_m
    dz = field.grid.dz_m
    h = field.half_taps
    if displacement_m is None:
        v = field.offset_m
        echo = field.echo
    else:
        d = _scatterer_displacement(field, displacement_m)
        v = field.offset_m + d
        # Exact phase turn of the moved scatterer: beta d^2 keeps it exact for large motion.
        turn = (np.float32(field.pulse.chirp_rad_m2) * d - field.phase_slope_rad_m) * d
        echo = field.echo * (np.cos(turn) + 1j * np.sin(turn))
    # Tap k (row offset k = -h..h) weighs a scatterer by env(k dz - v) = P_k exp(-(k^2 - h^2) dz^2 / 2 sigma^2)
    # with P_-h = env(-h dz - v) and P_k+1 = P_k q, q = exp(dz v / sigma^2): two exponentials per scatterer.
    inv_two_var = np.float32(1.0 / (2.0 * sigma**2))
    shifted = v + np.float32(h * dz)
    tap = echo * np.exp(-(shifted * shifted) * inv_two_var)
    q = np.exp(v * np.float32(dz / sigma**2))
    k = np.arange(-h, h + 1)
    gains = np.exp(-((k**2 - h**2) * dz**2) / (2.0 * sigma**2))
    n_rows = tap.shape[1]
    rows = np.zeros((n_rows + 2 * h, tap.shape[2]), dtype=np.complex64)
    summed = np.empty(tap.shape[1:], dtype=np.complex64)
    # Row j's scatterers reach row j + k; rows[j + k + h] holds it.
    for i, gain in enumerate(gains.astype(np.float32)):
        if i:
            np.multiply(tap, q, out=tap)
        np.sum(tap, axis=0, out=summed)
        summed *= gain
        rows[i : i + n_rows] += summed
    n_depth = field.grid.depth_m.size
    image = scipy.fft.fft(rows[h : h + n_depth], axis=-1)
    image *= transfer
    image = scipy.fft.ifft(image, axis=-1, overwrite_x=True)
    return image[:, field.pad_left : field.pad_left + field.grid.lateral_m.size]


def form_iq(field: ScattererField, displacement_m: np.ndarray) -> np.ndarray:
    """Noise-free baseband IQ of a reference frame and the tracking frames.

    Parameters
    ----------
    field : ScattererField
        Scatterers of the phantom position.
    displacement_m : np.ndarray
        Axial displacement, m, positive away from the probe, shape ``(frames, depth, lateral)`` on
        ``field.grid``.

    Returns
    -------
    np.ndarray
        complex64, shape ``(1 + frames, depth, lateral)``: frame 0 is the pre-push reference (zero
        displacement), frames 1.. image ``displacement_m[0..]``. ``E|IQ|^2 = pulse.echo_power(depth)``.
    """
    n_depth, n_lateral = field.grid.depth_m.size, field.grid.lateral_m.size
    if displacement_m.ndim != 3 or displacement_m.shape[1:] != (n_depth, n_lateral):
        raise ValueError(
            f"displacement_m must have shape (frames, {n_depth}, {n_lateral}), got {displacement_m.shape}"
        )
    transfer = _lateral_transfer(field.echo.shape[2], field.grid.dx_m, field.pulse.lateral_sigma_m)
    depth_phase = np.exp(-1j * field.pulse.chirp_rad_m2 * field.grid.depth_m**2).astype(np.complex64)[:, None]
    iq = np.empty((1 + displacement_m.shape[0], n_depth, n_lateral), dtype=np.complex64)
    iq[0] = _frame(field, None, transfer) * depth_phase
    for n, frame in enumerate(displacement_m, start=1):
        iq[n] = _frame(field, frame, transfer) * depth_phase
    return iq


def add_electronic_noise(iq: np.ndarray, *, noise_power: float, rng: np.random.Generator) -> np.ndarray:
    """Add circular complex white Gaussian noise with ``E|n|^2 = noise_power`` to ``iq`` in place.

    Parameters
    ----------
    iq : np.ndarray
        complex64, any shape; modified in place and returned.
    noise_power : float
        Complex noise power (>= 0), same units as ``|iq|^2``.
    rng : np.random.Generator
        Source of the noise.

    Returns
    -------
    np.ndarray
        ``iq``.
    """
    if noise_power < 0:
        raise ValueError(f"noise_power must be >= 0, got {noise_power}")
    iq += decorrelated_noise_frames(iq.shape, rng, power=noise_power)
    return iq


def decorrelated_noise_frames(
    shape: tuple[int, ...], rng: np.random.Generator, *, power: float = 1.0
) -> np.ndarray:
    """IQ frames of pure electronic noise, as recorded without acoustic contact.

    Parameters
    ----------
    shape : tuple of int
        Output shape, typically ``(1 + frames, depth, lateral)``.
    rng : np.random.Generator
        Source of the noise.
    power : float
        ``E|n|^2``.

    Returns
    -------
    np.ndarray
        complex64 circular white Gaussian noise, independent from pixel to pixel and frame to frame.
    """
    if power < 0:
        raise ValueError(f"noise power must be >= 0, got {power}")
    scale = math.sqrt(power / 2.0)
    noise = rng.standard_normal((*shape, 2), dtype=np.float32)
    noise *= np.float32(scale)
    return noise.view(np.complex64)[..., 0]


def reverberation_clutter(grid: ImageGrid, pulse: PulseEcho, *, level_db_at_face: float, decay_db_per_mm: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Reverberation clutter near the probe face: echoes ringing between the face and the gel surface.

    It travels with the probe, not with the gel, so it is the same in every frame of a shot and pulls
    displacement estimates towards zero where it is strong. Modelled as speckle of its own (circular
    Gaussian, filtered by the pulse's axial and lateral point-spread functions) whose power, relative to
    the tissue echo at the same depth, is ``level_db_at_face - decay_db_per_mm * depth_mm`` dB.

    Returns
    -------
    np.ndarray
        complex64 ``(depth, lateral)``.
    """
    shape = (grid.depth_m.size, grid.lateral_m.size)
    white = rng.standard_normal((2, *shape))
    sigma_px = (pulse.axial_sigma_m / grid.dz_m, pulse.lateral_sigma_m / abs(grid.dx_m))
    smooth = np.stack([scipy.ndimage.gaussian_filter(part, sigma_px, mode="reflect") for part in white])
    speckle = (smooth[0] + 1j * smooth[1]) / math.sqrt(float(np.mean(smooth[0] ** 2 + smooth[1] ** 2)))
    relative_db = level_db_at_face - decay_db_per_mm * grid.depth_m * 1e3
    power = pulse.echo_power(grid.depth_m) * 10.0 ** (relative_db / 10.0)
    return (speckle * np.sqrt(power)[:, None]).astype(np.complex64)


def decorrelate_frame(iq: np.ndarray, frame: int, *, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """A dropout: frame ``frame`` of ``iq`` keeps only ``correlation`` of its echo, the rest replaced by
    uncorrelated speckle of the same power per depth row (a bubble in the coupling, a pulser glitch).
    Modifies ``iq`` in place and returns it."""
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must lie in [0, 1], got {correlation}")
    row_power = np.mean(np.abs(iq[frame]) ** 2, axis=1)
    fresh = decorrelated_noise_frames(iq.shape[1:], rng)[0] * np.sqrt(row_power)[:, None].astype(np.float32)
    iq[frame] = np.float32(correlation) * iq[frame] + np.float32(math.sqrt(1.0 - correlation**2)) * fresh
    return iq


def simulate_iq(
    displacement_m: np.ndarray,
    grid: ImageGrid,
    *,
    speckle_seed: int,
    snr_db: float,
    focus_depth_m: float,
    rng: np.random.Generator,
    pulse: PulseEcho = PulseEcho(),
    scatterers_per_pixel: int = DEFAULT_SCATTERERS_PER_PIXEL,
) -> np.ndarray:
    """Baseband IQ of a displacement sequence, with speckle, attenuation and electronic noise.

    Parameters
    ----------
    displacement_m : np.ndarray
        Axial displacement, m, positive away from the probe, shape ``(frames, depth, lateral)``.
    grid : ImageGrid
        Image grid of ``displacement_m``.
    speckle_seed : int
        Speckle seed of the phantom position.
    snr_db : float
        Mean echo power at ``focus_depth_m`` over the noise power, dB.
    focus_depth_m : float
        Depth at which ``snr_db`` holds; deeper echoes are weaker by the attenuation.
    rng : np.random.Generator
        Source of the electronic noise.
    pulse : PulseEcho
        Pulse-echo properties.
    scatterers_per_pixel : int
        Scatterers per pixel.

    Returns
    -------
    np.ndarray
        complex64, shape ``(1 + frames, depth, lateral)``; frame 0 is the pre-push reference.
    """
    field = scatterer_field(grid, seed=speckle_seed, pulse=pulse, scatterers_per_pixel=scatterers_per_pixel)
    iq = form_iq(field, displacement_m)
    return add_electronic_noise(iq, noise_power=pulse.noise_power(snr_db=snr_db, focus_depth_m=focus_depth_m), rng=rng)


__all__ = [
    "ATTENUATION_DB_CM_MHZ",
    "DEFAULT_SCATTERERS_PER_PIXEL",
    "LATERAL_SIGMA_M",
    "PulseEcho",
    "ScattererField",
    "add_electronic_noise",
    "decorrelate_frame",
    "decorrelated_noise_frames",
    "form_iq",
    "reverberation_clutter",
    "scatterer_field",
    "simulate_iq",
]
