"""The twin scanner's acquisition chain: medium -> shear-wave displacement -> speckle IQ (SPEC §4).

What the scanner bridge twin returns for one fired push/imaging sequence. The electronic noise level
is set by ``snr_db`` against the mean echo power at the push focus depth (the middle of the 20 mm
field of view); without acoustic contact the same receive noise is all the scanner records. What the
echoes go through besides the wave (scatterer density, probe micro-motion, reverberation clutter,
dropouts) comes in :class:`EchoConditions`; its defaults are the ideal chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shearlab.devices.twin.physics.boundaries import Boundaries
from shearlab.devices.twin.physics.displacement import simulate_displacement
from shearlab.devices.twin.physics.imaging import (
    PulseEcho,
    add_electronic_noise,
    decorrelate_frame,
    decorrelated_noise_frames,
    form_iq,
    scatterer_field,
)
from shearlab.devices.twin.physics.medium import Medium2D
from shearlab.devices.twin.physics.push import PushBeam
from shearlab.protocols.sequences import SequenceSpec


@dataclass(frozen=True)
class EchoConditions:
    """What one shot's echoes go through besides the shear wave.

    Attributes
    ----------
    snr_db : float
        Mean echo power at the push focus depth over the electronic noise power, dB.
    attenuation_db_cm_mhz : float or None
        The gel's one-way attenuation (echoes go both ways); ``None``: ``PulseEcho``'s default.
    scatterer_density : np.ndarray or None
        Relative echo power per unit volume on the image grid, ``(depth, lateral)``.
    probe_motion_m : np.ndarray or None
        Axial motion of the gel relative to the probe at each frame including the reference,
        ``(1 + frames,)``, m, positive away from the probe.
    clutter : np.ndarray or None
        complex64 ``(depth, lateral)`` reverberation clutter, the same in every frame.
    dropouts : tuple of (int, float)
        ``(frame, correlation)`` of each decorrelated tracking frame (1-based: frame 0 is the reference).
    """

    snr_db: float = 30.0
    attenuation_db_cm_mhz: float | None = None
    scatterer_density: np.ndarray | None = None
    probe_motion_m: np.ndarray | None = None
    clutter: np.ndarray | None = None
    dropouts: tuple[tuple[int, float], ...] = ()

    def pulse(self, sequence: SequenceSpec) -> PulseEcho:
        if self.attenuation_db_cm_mhz is None:
            return PulseEcho.from_probe(sequence.probe)
        return PulseEcho.from_probe(sequence.probe, attenuation_db_cm_mhz=2.0 * self.attenuation_db_cm_mhz)


def acquire_iq(
    medium: Medium2D | None,
    sequence: SequenceSpec,
    *,
    speckle_seed: int,
    rng: np.random.Generator,
    echo: EchoConditions = EchoConditions(),
    beam: PushBeam | None = None,
    boundaries: Boundaries = Boundaries(),
) -> tuple[np.ndarray, np.ndarray]:
    """Fire one push-and-track sequence on the twin.

    Parameters
    ----------
    medium : Medium2D or None
        The image plane under the probe; ``None`` when the probe has no acoustic contact.
    sequence : SequenceSpec
        Probe, push and imaging; outputs lie on ``sequence.grid``.
    speckle_seed : int
        Speckle seed of the phantom position (same seed, same speckle).
    rng : np.random.Generator
        Source of the electronic noise and of dropout speckle.
    echo : EchoConditions
        SNR and what else the echoes go through.
    beam, boundaries
        The push's force field and the gel's edges (see ``simulate_displacement``).

    Returns
    -------
    iq : np.ndarray
        complex64, shape ``(1 + frames, depth, lateral)``: frame 0 is the pre-push reference.
    displacement_m : np.ndarray
        float32 true axial displacement of the gel, m, positive away from the probe, shape
        ``(frames, depth, lateral)``; zero without contact. Probe motion is not part of it.
    """
    grid = sequence.grid
    pulse = echo.pulse(sequence)
    focus_depth_m = sequence.push.focus_depth_mm * 1e-3
    frames, n_depth, n_lateral = grid.shape
    noise_power = pulse.noise_power(snr_db=echo.snr_db, focus_depth_m=focus_depth_m)
    if medium is None:
        iq = decorrelated_noise_frames((1 + frames, n_depth, n_lateral), rng, power=noise_power)
        return iq, np.zeros(grid.shape, dtype=np.float32)
    displacement_m = simulate_displacement(medium, sequence, beam=beam, boundaries=boundaries)
    displacement_m = displacement_m.astype(np.float32, copy=False)
    seen = displacement_m
    if echo.probe_motion_m is not None:
        relative = (echo.probe_motion_m[1:] - echo.probe_motion_m[0]).astype(np.float32)
        seen = displacement_m + relative[:, None, None]
    field = scatterer_field(grid, seed=speckle_seed, pulse=pulse, density=echo.scatterer_density)
    iq = form_iq(field, seen)
    if echo.clutter is not None:
        iq += echo.clutter[None]
    add_electronic_noise(iq, noise_power=noise_power, rng=rng)
    for frame, correlation in echo.dropouts:
        decorrelate_frame(iq, frame, correlation=correlation, rng=rng)
    return iq, displacement_m


__all__ = ["EchoConditions", "acquire_iq"]
