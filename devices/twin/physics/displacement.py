"""The twin's one entry point for shear-wave displacement (SPEC §4).

Frame times are those of ``sequence.grid`` (``ImageGrid.frame_times_s``), counted from the push
*start*: the first frame, 0.13 ms, falls inside the 267 us push.
"""

from __future__ import annotations

import numpy as np

from shearlab.devices.twin.physics.medium import Medium2D
from shearlab.devices.twin.physics.push import push_beam
from shearlab.devices.twin.physics.shear_wave_exact import exact_displacement
from shearlab.devices.twin.physics.shear_wave_fd import fd_displacement
from shearlab.protocols.sequences import SequenceSpec

METHODS = ("auto", "exact", "fd")


def simulate_displacement(medium: Medium2D, sequence: SequenceSpec, *, method: str = "auto") -> np.ndarray:
    """Axial displacement of one push-and-track sequence.

    Parameters
    ----------
    medium : Medium2D
        The image plane's shear modulus, viscosity and density.
    sequence : SequenceSpec
        Probe, push and imaging; the output lies on ``sequence.grid``.
    method : {"auto", "exact", "fd"}
        "exact": the Fourier-domain solution (homogeneous media only); "fd": finite differences;
        "auto": exact when ``medium.is_homogeneous``, else FD.

    Returns
    -------
    np.ndarray
        float32 displacement in m, shape ``(frames, depth, lateral)``, positive away from the probe.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "exact" and not medium.is_homogeneous:
        raise ValueError("the exact solver needs a homogeneous medium; use method='fd' or 'auto'")
    grid = sequence.grid
    beam = push_beam(sequence.push, sequence.probe)
    common = dict(
        body_force=beam.body_force_n_m3,
        duration_s=beam.duration_s,
        depth_m=grid.depth_m,
        lateral_m=grid.lateral_m,
        times_s=grid.frame_times_s,
    )
    if method == "fd" or (method == "auto" and not medium.is_homogeneous):
        return fd_displacement(medium, **common)
    return exact_displacement(
        mu_pa=float(medium.mu_pa.flat[0]),
        eta_pa_s=float(medium.eta_pa_s.flat[0]),
        rho_kg_m3=float(medium.rho_kg_m3.flat[0]),
        **common,
    )


__all__ = ["METHODS", "simulate_displacement"]
