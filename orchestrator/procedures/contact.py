"""Force-controlled probe contact: lower the probe onto the gel until the Nano43 reads 0.2 N.

The UR3 (CB3) has no precise wrist force sensor, so the loop closes through Cartesian velocity
commands (``speedL``) on the Nano43 reading. The loop is proportional with a speed cap; its gain is
bounded by the contact stiffness (up to ~4 kN/m on 17.5 % gel for this probe face) times the loop
period, which on the twin at high speed can be tens of virtual milliseconds: gain x stiffness x
period must stay well below 1 or the force oscillates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.errors import DeviceFaultError, DeviceTimeoutError, SafetyLimitError
from shearlab.devices.interfaces import ForceSensor, Robot
from shearlab.protocols.plans import ContactSettings

# Above this fraction of the target the approach hands over to the force loop.
HANDOVER_FRACTION = 0.5


@dataclass
class ContactResult:
    """How contact was made; ``force_trace`` is (time_s, force_n) of the whole loop."""

    force_n: float
    force_std_n: float
    pose: np.ndarray
    duration_s: float
    force_trace: list[tuple[float, float]] = field(default_factory=list)


def contact_force_n(sensor: ForceSensor) -> float:
    """Compressive force on the probe face (Nano43 +Fz after bias), N."""
    return float(sensor.read().force_n[2])


def _checked_force(sensor: ForceSensor, robot: Robot, limit_n: float, trace: list[tuple[float, float]], clock: Clock) -> float:
    force = contact_force_n(sensor)
    trace.append((clock.now(), force))
    if force > limit_n:
        robot.stop()
        raise SafetyLimitError(robot.name, f"contact force {force:.3f} N exceeds the limit {limit_n:.3f} N; motion stopped")
    if robot.is_protective_stopped():
        raise DeviceFaultError(robot.name, "protective stop during contact")
    return force


def make_contact(
    robot: Robot,
    sensor: ForceSensor,
    clock: Clock,
    *,
    surface_xyz_m: np.ndarray,
    settings: ContactSettings,
    max_force_n: float,
    speed_m_s: float,
    accel_m_s2: float,
) -> ContactResult:
    """Move above ``surface_xyz_m`` (the expected gel surface), bias the sensor in air, descend and
    regulate to ``settings.target_force_n`` until it holds within the tolerance for ``settle_s``.

    Raises ``SafetyLimitError`` if the force passes ``max_force_n`` (the robot is stopped first),
    ``DeviceTimeoutError`` if contact is not reached and settled within ``settings.timeout_s``.
    """
    started = clock.now()
    pose = robot.tcp_pose()
    above = np.array([*surface_xyz_m[:2], surface_xyz_m[2] + settings.approach_clearance_mm * 1e-3, *pose[3:]])
    lift_clear(robot, clearance_z_m=surface_xyz_m[2] + settings.lift_clearance_mm * 1e-3, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
    robot.move_linear(np.array([*above[:2], robot.tcp_pose()[2], *above[3:]]), speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
    robot.move_linear(above, speed_m_s=settings.approach_speed_m_s, accel_m_s2=accel_m_s2)
    sensor.bias()

    trace: list[tuple[float, float]] = []
    deadline = clock.deadline(settings.timeout_s)
    target = settings.target_force_n
    down = np.zeros(6)
    # Approach at the loop's speed cap until the gel pushes back.
    down[2] = -settings.max_speed_m_s
    robot.speed_linear(down, accel_m_s2=accel_m_s2)
    force = _checked_force(sensor, robot, max_force_n, trace, clock)
    while force < HANDOVER_FRACTION * target:
        if deadline.expired():
            robot.stop()
            raise DeviceTimeoutError(robot.name, f"no contact within {settings.timeout_s:.0f} s (force {force:.3f} N)")
        robot.kick_watchdog()
        force = _checked_force(sensor, robot, max_force_n, trace, clock)

    settled_since: float | None = None
    while True:
        if deadline.expired():
            robot.stop()
            raise DeviceTimeoutError(robot.name, f"contact force did not settle at {target:.2f} N within {settings.timeout_s:.0f} s (last {force:.3f} N)")
        error = target - force
        v = float(np.clip(settings.gain_m_s_per_n * error, -settings.max_speed_m_s, settings.max_speed_m_s))
        velocity = np.zeros(6)
        velocity[2] = -v
        robot.speed_linear(velocity, accel_m_s2=accel_m_s2)
        robot.kick_watchdog()
        force = _checked_force(sensor, robot, max_force_n, trace, clock)
        now = clock.now()
        if abs(target - force) <= settings.tolerance_n:
            settled_since = now if settled_since is None else settled_since
            if now - settled_since >= settings.settle_s:
                break
        else:
            settled_since = None
    robot.stop()
    # Verify the force holds with the arm at rest.
    samples = [contact_force_n(sensor) for _ in range(10)]
    mean, std = float(np.mean(samples)), float(np.std(samples))
    if abs(mean - target) > 2 * settings.tolerance_n:
        raise DeviceTimeoutError(sensor.name, f"contact force drifted to {mean:.3f} N after settling (target {target:.2f} N)")
    return ContactResult(force_n=mean, force_std_n=std, pose=robot.tcp_pose(), duration_s=clock.now() - started, force_trace=trace)


def lift_clear(robot: Robot, *, clearance_z_m: float, speed_m_s: float, accel_m_s2: float) -> None:
    """Raise the probe straight up to ``clearance_z_m`` unless it is already at or above it."""
    pose = robot.tcp_pose()
    if pose[2] >= clearance_z_m - 1e-4:
        return
    robot.stop()
    target = pose.copy()
    target[2] = clearance_z_m
    robot.move_linear(target, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
