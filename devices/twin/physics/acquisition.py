"""The twin scanner's acquisition chain: medium -> shear-wave displacement -> speckle IQ (SPEC §4).

What the scanner bridge twin returns for one fired push/imaging sequence. The electronic noise level
is set by ``snr_db`` against the mean echo power at the push focus depth (the middle of the 20 mm
field of view); without acoustic contact the same receive noise is all the scanner records.
"""

from __future__ import annotations

import numpy as np

from shearlab.devices.twin.physics.displacement import simulate_displacement
from shearlab.devices.twin.physics.imaging import PulseEcho, decorrelated_noise_frames, simulate_iq
from shearlab.devices.twin.physics.medium import Medium2D
from shearlab.protocols.sequences import SequenceSpec


def acquire_iq(
    medium: Medium2D | None,
    sequence: SequenceSpec,
    *,
    speckle_seed: int,
    snr_db: float = 30.0,
    rng: np.random.Generator,
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
    snr_db : float
        Mean echo power at the push focus depth over the electronic noise power, dB (20-40 typical).
    rng : np.random.Generator
        Source of the electronic noise.

    Returns
    -------
    iq : np.ndarray
        complex64, shape ``(1 + frames, depth, lateral)``: frame 0 is the pre-push reference.
    displacement_m : np.ndarray
        float32 true axial displacement, m, positive away from the probe, shape ``(frames, depth, lateral)``;
        zero without contact.
    """
    grid = sequence.grid
    pulse = PulseEcho.from_probe(sequence.probe)
    focus_depth_m = sequence.push.focus_depth_mm * 1e-3
    frames, n_depth, n_lateral = grid.shape
    if medium is None:
        noise_power = pulse.noise_power(snr_db=snr_db, focus_depth_m=focus_depth_m)
        iq = decorrelated_noise_frames((1 + frames, n_depth, n_lateral), rng, power=noise_power)
        return iq, np.zeros(grid.shape, dtype=np.float32)
    displacement_m = simulate_displacement(medium, sequence).astype(np.float32, copy=False)
    iq = simulate_iq(
        displacement_m,
        grid,
        speckle_seed=speckle_seed,
        snr_db=snr_db,
        focus_depth_m=focus_depth_m,
        rng=rng,
        pulse=pulse,
    )
    return iq, displacement_m


__all__ = ["acquire_iq"]
