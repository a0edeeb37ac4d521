"""Acoustic radiation force of a push (SPEC §4).

The push is modelled as a body force ``F = 2 alpha I / c`` (Nyborg's absorbed-momentum force) along the
beam axis, which is the depth axis of the image plane. ``alpha`` is the *amplitude* absorption
coefficient in Np/m (``2 alpha`` is the intensity coefficient), taken equal to the attenuation
0.5 dB/cm/MHz as is usual for ARFI in gelatin/soft tissue, and ``c`` the speed of sound.

Beam profile (separable Gaussian approximation of a focused rectangular aperture). For an aperture
``D = n_elements * pitch`` focused at ``z_f``, ``F# = z_f / D`` and ``lambda = c / f0``:

- lateral: the focal intensity of a uniformly weighted rectangular aperture is ``sinc^2`` with a
  full width at half maximum of ``0.886 lambda F#``; the main lobe is replaced by a Gaussian of the
  same FWHM (11 x 0.29 mm at 7.5 MHz, focus 10 mm: 0.57 mm);
- axial: the focal depth of field ``7 lambda F#^2`` is the -6 dB full length of the on-axis intensity;
  a Gaussian with that -6 dB length has a -3 dB length ``7 lambda F#^2 / sqrt(2)`` (10.0 mm: the
  force is within 3 dB of its peak from 5 mm to 15 mm);
- the beam's narrowing and widening about the focus are not modelled: the quoted peak intensity is
  the in-situ (derated) value at the focus for the nominal attenuation;
- attenuation on the way in (when the gel's attenuation is given, :func:`push_beam`): the intensity
  along the axis falls as ``exp(-2 alpha f0 z)``, so relative to the focus the force carries
  ``exp(-2 alpha f0 (z - z_f))`` (+1.9 dB at 5 mm, -1.9 dB at 15 mm for 0.5 dB/cm/MHz at 7.5 MHz),
  and a gel that attenuates more than nominal gets less intensity at the focus,
  ``exp(-2 (alpha - alpha_nominal) f0 z_f)``, but absorbs a larger share of it (``F = 2 alpha I / c``);
- the Gaussian leaves 6 % of the peak force at the probe face, about the ratio of the focal to the
  aperture cross-section (0.57 mm / 3.2 mm laterally, less with the elevation lens), so the profile
  is not cut there: the image plane is modelled as an unbounded medium (the probe face is not a
  boundary) and an untruncated Gaussian keeps the force's spatial spectrum compact.

Peak intensity *(ours; the paper gives none)*: 1000 W/cm^2 in situ at 120 V. ARFI push
intensities in the literature are of the order of 1000 W/cm^2 (pulse average at the focus, e.g. the
finite-element ARFI studies of Palmeri et al. 2005); an 11-element aperture is small, so we stay at
that order rather than above it. Intensity scales with the drive voltage squared (acoustic pressure
is proportional to voltage). With it the peak displacement is ~16 um in the 5 % gel and ~6 um in
the 17.5 % gel (SPEC §4: a few um to ~15 um), a magnitude check, not a fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shearlab.protocols.sequences import SOUND_SPEED_M_S, ProbeGeometry, PushSpec

ATTENUATION_DB_CM_MHZ = 0.5
DB_PER_NEPER = 20.0 / math.log(10.0)
PEAK_INTENSITY_W_CM2_AT_REFERENCE = 1000.0
REFERENCE_VOLTAGE_V = 120.0
# Sinc^2 half-power width and focal depth-of-field factors of a focused rectangular aperture.
LATERAL_FWHM_PER_LAMBDA_FNUMBER = 0.886
DEPTH_OF_FIELD_PER_LAMBDA_FNUMBER2 = 7.0

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def attenuation_np_m(probe: ProbeGeometry, attenuation_db_cm_mhz: float = ATTENUATION_DB_CM_MHZ) -> float:
    """Amplitude attenuation coefficient at the probe's centre frequency, Np/m."""
    db_per_m = attenuation_db_cm_mhz * probe.centre_frequency_mhz * 100.0
    return db_per_m / DB_PER_NEPER


def peak_intensity_w_m2(voltage_v: float) -> float:
    """In-situ focal intensity of a push at ``voltage_v``, W/m^2 (scales with voltage squared)."""
    return PEAK_INTENSITY_W_CM2_AT_REFERENCE * 1e4 * (voltage_v / REFERENCE_VOLTAGE_V) ** 2


def push_duration_s(push: PushSpec, probe: ProbeGeometry) -> float:
    """Push length, s: ``cycles / f0`` (2000 cycles at 7.5 MHz: 267 us)."""
    return push.duration_s(probe)


@dataclass(frozen=True)
class PushBeam:
    """The radiation-force field of one push, in image-plane coordinates (SI).

    ``lateral_centre_m`` is measured from the probe centre; depth from the probe face.
    ``path_attenuation_np_m`` is the gel's amplitude attenuation on the way in (0: not modelled, the
    force is the bare Gaussian beam).
    """

    lateral_centre_m: float
    focus_depth_m: float
    lateral_fwhm_m: float
    axial_fwhm_m: float
    peak_intensity_w_m2: float
    peak_force_n_m3: float
    duration_s: float
    path_attenuation_np_m: float = 0.0

    def body_force_n_m3(self, depth_m: np.ndarray, lateral_m: np.ndarray) -> np.ndarray:
        """Body force on a grid, N/m^3, shape ``(depth, lateral)``, positive = away from the probe.

        Parameters
        ----------
        depth_m : np.ndarray
            Depths, shape ``(depth,)``, m from the probe face.
        lateral_m : np.ndarray
            Lateral positions, shape ``(lateral,)``, m from the probe centre.
        """
        sigma_x = self.lateral_fwhm_m / _FWHM_PER_SIGMA
        sigma_z = self.axial_fwhm_m / _FWHM_PER_SIGMA
        depth = np.asarray(depth_m, dtype=np.float64)
        lateral = np.asarray(lateral_m, dtype=np.float64)
        offset = depth - self.focus_depth_m
        axial = np.exp(-0.5 * (offset / sigma_z) ** 2 - 2.0 * self.path_attenuation_np_m * offset)
        across = np.exp(-0.5 * ((lateral - self.lateral_centre_m) / sigma_x) ** 2)
        return self.peak_force_n_m3 * axial[:, None] * across[None, :]


def push_beam(
    push: PushSpec,
    probe: ProbeGeometry,
    *,
    attenuation_db_cm_mhz: float | None = None,
    intensity_scale: float = 1.0,
) -> PushBeam:
    """Radiation-force beam of ``push`` fired from ``probe`` (see the module docstring).

    Parameters
    ----------
    attenuation_db_cm_mhz : float, optional
        One-way attenuation of the gel, dB/cm/MHz. ``None``: the nominal gel without the attenuation
        profile along the way in (the first twin's model).
    intensity_scale : float
        Factor on the transmitted intensity: coupling, shot-to-shot output and transducer heating.
    """
    if intensity_scale < 0:
        raise ValueError(f"intensity_scale must be >= 0, got {intensity_scale}")
    wavelength_m = SOUND_SPEED_M_S / (probe.centre_frequency_mhz * 1e6)
    aperture_m = push.n_elements * probe.pitch_mm * 1e-3
    focus_m = push.focus_depth_mm * 1e-3
    f_number = focus_m / aperture_m
    intensity = peak_intensity_w_m2(push.voltage_v) * intensity_scale
    absorption = attenuation_np_m(probe)
    path = 0.0
    if attenuation_db_cm_mhz is not None:
        if attenuation_db_cm_mhz < 0:
            raise ValueError(f"attenuation must be >= 0 dB/cm/MHz, got {attenuation_db_cm_mhz}")
        path = attenuation_np_m(probe, attenuation_db_cm_mhz)
        intensity *= math.exp(-2.0 * (path - absorption) * focus_m)
        absorption = path
    return PushBeam(
        lateral_centre_m=push.lateral_mm * 1e-3,
        focus_depth_m=focus_m,
        lateral_fwhm_m=LATERAL_FWHM_PER_LAMBDA_FNUMBER * wavelength_m * f_number,
        axial_fwhm_m=DEPTH_OF_FIELD_PER_LAMBDA_FNUMBER2 * wavelength_m * f_number**2 / math.sqrt(2.0),
        peak_intensity_w_m2=intensity,
        peak_force_n_m3=2.0 * absorption * intensity / SOUND_SPEED_M_S,
        duration_s=push_duration_s(push, probe),
        path_attenuation_np_m=path,
    )


def push_body_force(
    push: PushSpec, probe: ProbeGeometry, depth_m: np.ndarray, lateral_m: np.ndarray
) -> np.ndarray:
    """Body force of ``push`` on a grid, N/m^3, shape ``(depth, lateral)``; it acts for
    :func:`push_duration_s` seconds from the push start."""
    return push_beam(push, probe).body_force_n_m3(depth_m, lateral_m)


__all__ = [
    "ATTENUATION_DB_CM_MHZ",
    "PEAK_INTENSITY_W_CM2_AT_REFERENCE",
    "REFERENCE_VOLTAGE_V",
    "PushBeam",
    "attenuation_np_m",
    "peak_intensity_w_m2",
    "push_beam",
    "push_body_force",
    "push_duration_s",
]
