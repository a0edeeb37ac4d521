"""The rig's robot limits, checked before any I/O by every ``Robot`` (the UR driver and the simulation).

A refused command raises ``SafetyLimitError`` (or ``ValueError`` for a malformed argument) naming the
device, and nothing is sent.
"""

from __future__ import annotations

import math

import numpy as np

from shearlab.devices.errors import SafetyLimitError
from shearlab.protocols.rig import RobotLimits


def checked_vector(name: str, value: np.ndarray, what: str) -> np.ndarray:
    """``value`` as a finite float array of shape (6,) (x, y, z, rx, ry, rz)."""
    array = np.asarray(value, dtype=float)
    if array.shape != (6,):
        raise ValueError(f"{name}: {what} must have shape (6,) (x, y, z, rx, ry, rz), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: {what} must be finite, got {array.tolist()}")
    return array


def check_rate(name: str, value: float, limit: float, what: str, limit_name: str, unit: str) -> None:
    """A positive speed or acceleration at most the rig's ``limit_name``."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: {what} must be a positive number of {unit}, got {value!r}")
    if value > limit:
        raise SafetyLimitError(name, f"{what} = {value:g} {unit} exceeds the rig limit {limit_name} = {limit:g} {unit}")


def checked_move(name: str, limits: RobotLimits, pose: np.ndarray, *, speed_m_s: float, accel_m_s2: float) -> np.ndarray:
    """The target of a linear move: inside the workspace box, at an allowed speed and acceleration."""
    target = checked_vector(name, pose, "pose")
    xyz = [float(v) for v in target[:3]]
    box = limits.workspace
    if not box.contains(xyz):
        raise SafetyLimitError(
            name, f"target position {_fmt(xyz)} m is outside the workspace box {_fmt(box.min_m)}..{_fmt(box.max_m)} m"
        )
    check_rate(name, speed_m_s, limits.max_speed_m_s, "speed_m_s", "max_speed_m_s", "m/s")
    check_rate(name, accel_m_s2, limits.max_accel_m_s2, "accel_m_s2", "max_accel_m_s2", "m/s^2")
    return target


def checked_velocity(name: str, limits: RobotLimits, velocity: np.ndarray, *, accel_m_s2: float) -> np.ndarray:
    """A Cartesian velocity command whose linear speed and acceleration the rig allows."""
    xd = checked_vector(name, velocity, "velocity")
    linear = float(np.linalg.norm(xd[:3]))
    if linear > limits.max_speed_m_s:
        raise SafetyLimitError(
            name, f"linear speed {linear:g} m/s exceeds the rig limit max_speed_m_s = {limits.max_speed_m_s:g} m/s"
        )
    check_rate(name, accel_m_s2, limits.max_accel_m_s2, "accel_m_s2", "max_accel_m_s2", "m/s^2")
    return xd


def checked_watchdog_hz(name: str, min_frequency_hz: float) -> float:
    """A watchdog frequency: a positive, finite number of Hz."""
    if not (math.isfinite(min_frequency_hz) and min_frequency_hz > 0):
        raise ValueError(f"{name}: watchdog frequency must be a positive number of Hz, got {min_frequency_hz!r}")
    return float(min_frequency_hz)


def _fmt(values: tuple[float, ...] | list[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"
