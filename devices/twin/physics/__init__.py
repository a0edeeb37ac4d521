"""Shear-wave physics of the digital twin: push force, image-plane medium, solvers, preview."""

from shearlab.devices.twin.physics.displacement import simulate_displacement
from shearlab.devices.twin.physics.medium import (
    Medium2D,
    homogeneous_medium,
    image_plane_medium,
    irregular_inclusion,
)
from shearlab.devices.twin.physics.preview import render_preview
from shearlab.devices.twin.physics.push import PushBeam, push_beam, push_body_force, push_duration_s
from shearlab.devices.twin.physics.shear_wave_exact import exact_displacement, voigt_phase_speed_m_s
from shearlab.devices.twin.physics.shear_wave_fd import fd_displacement

__all__ = [
    "Medium2D",
    "PushBeam",
    "exact_displacement",
    "fd_displacement",
    "homogeneous_medium",
    "image_plane_medium",
    "irregular_inclusion",
    "push_beam",
    "push_body_force",
    "push_duration_s",
    "render_preview",
    "simulate_displacement",
    "voigt_phase_speed_m_s",
]
