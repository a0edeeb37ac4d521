"""The twin's one entry point for shear-wave displacement (SPEC §4).

Frame times are those of ``sequence.grid`` (``ImageGrid.frame_times_s``), counted from the push
*start*; the first frame is taken 0.13 ms after the push *ends* (seed paper: imaging "engaged 0.13 ms
after the push sequence").

Solvers: the exact Fourier-domain solution for a homogeneous gel, finite differences for anything else
(a cast block's smooth fluctuations, inclusions). The gel's edges enter both through
:class:`~.boundaries.Boundaries`; with the probe face as a boundary the FD domain is half as deep, and
FD costs about what the exact solver does (``benchmarks/bench_shear_waves.py``).
"""

from __future__ import annotations

import numpy as np

from shearlab.devices.twin.physics.boundaries import Boundaries
from shearlab.devices.twin.physics.medium import Medium2D
from shearlab.devices.twin.physics.push import PushBeam, push_beam
from shearlab.devices.twin.physics.shear_wave_exact import (
    SUPPORT_FRACTION,
    SUPPORT_SEARCH_M,
    BodyForce,
    exact_displacement,
    force_support_m,
    wave_reach_m,
)
from shearlab.devices.twin.physics.shear_wave_fd import fd_displacement
from shearlab.protocols.sequences import SequenceSpec

METHODS = ("auto", "exact", "fd")


def _imaged_force(beam: PushBeam, boundaries: Boundaries, medium: Medium2D, depth_m: np.ndarray,
                  lateral_m: np.ndarray, t_max_s: float) -> BodyForce:
    if boundaries.is_unbounded:
        return beam.body_force_n_m3
    reach = wave_reach_m(mu_pa=float(medium.mu_pa.max()), eta_pa_s=float(medium.eta_pa_s.max()),
                         rho_kg_m3=float(medium.rho_kg_m3.min()), duration_s=beam.duration_s, t_max_s=t_max_s)
    support = force_support_m(beam.body_force_n_m3, depth_m, lateral_m, fraction=SUPPORT_FRACTION,
                              search_m=max(SUPPORT_SEARCH_M, reach))
    region = (float(depth_m[0]), float(depth_m[-1]), float(lateral_m[0]), float(lateral_m[-1]))
    return boundaries.with_images(beam.body_force_n_m3, support_m=support, region_m=region, reach_m=reach)


def simulate_displacement(medium: Medium2D, sequence: SequenceSpec, *, beam: PushBeam | None = None,
                          boundaries: Boundaries = Boundaries(), method: str = "auto") -> np.ndarray:
    """Axial displacement of one push-and-track sequence.

    Parameters
    ----------
    medium : Medium2D
        The image plane's shear modulus, viscosity and density.
    sequence : SequenceSpec
        Probe, push and imaging; the output lies on ``sequence.grid``.
    beam : PushBeam, optional
        The push's force field; default ``push_beam(sequence.push, sequence.probe)``.
    boundaries : Boundaries
        The gel's edges (default: unbounded); the output is 0 outside them.
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
    beam = beam or push_beam(sequence.push, sequence.probe)
    times = grid.frame_times_s
    force = _imaged_force(beam, boundaries, medium, grid.depth_m, grid.lateral_m, float(times.max(initial=0.0)))
    if method == "fd" or (method == "auto" and not medium.is_homogeneous):
        return fd_displacement(medium, boundaries=boundaries, body_force=force, duration_s=beam.duration_s,
                               depth_m=grid.depth_m, lateral_m=grid.lateral_m, times_s=times)
    u = exact_displacement(mu_pa=float(medium.mu_pa.flat[0]), eta_pa_s=float(medium.eta_pa_s.flat[0]),
                           rho_kg_m3=float(medium.rho_kg_m3.flat[0]), body_force=force, duration_s=beam.duration_s,
                           depth_m=grid.depth_m, lateral_m=grid.lateral_m, times_s=times)
    return u * boundaries.inside(grid.depth_m, grid.lateral_m)


__all__ = ["METHODS", "simulate_displacement"]
