"""Force-controlled probe contact: lower the probe onto the gel until the Nano43 reads 0.2 N.

The UR3 (CB3) has no precise wrist force sensor, so the loop closes through Cartesian velocity
commands (``speedL``) on the Nano43 reading. Each iteration costs a force read and a command
handshake with the controller, and the arm's state arrives at the RTDE rate; the loop's delay ``T``
(the longer of the iteration period and the interval between fresh robot states) is measured as
it runs, and both the approach
speed and the gain are bounded by it: a step may add at most a quarter of the target force at the
stiffest expected contact, and gain x stiffness x T stays at 0.5 (a proportional loop with one
period of delay is stable below 1). On the lab's robot ``T`` is a few ms; on a fast twin it is tens
of virtual ms and the loop slows down accordingly instead of overshooting.
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
# Largest force increment one approach step may add, as a fraction of the target.
STEP_FRACTION = 0.25
LOOP_MARGIN = 0.5


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


class _Loop:
    """One force-loop iteration at a time: read, check the limits, track the period."""

    def __init__(self, robot: Robot, sensor: ForceSensor, clock: Clock, limit_n: float) -> None:
        self.robot, self.sensor, self.clock, self.limit_n = robot, sensor, clock, limit_n
        self.trace: list[tuple[float, float]] = []
        self.period_s = 0.0
        self._pose = robot.tcp_pose()
        self._pose_at = clock.now()

    def _track(self, dt: float) -> None:
        """Delay estimate: decays slowly, jumps up at once (a late state is what overshoots)."""
        self.period_s = dt if self.period_s == 0 else max(dt, 0.9 * self.period_s + 0.1 * dt)

    def read(self) -> float:
        force = contact_force_n(self.sensor)
        now = self.clock.now()
        if self.trace:
            self._track(now - self.trace[-1][0])
        pose = self.robot.tcp_pose()
        if not np.array_equal(pose, self._pose):
            self._track(now - self._pose_at)
            self._pose, self._pose_at = pose, now
        self.trace.append((now, force))
        if force > self.limit_n:
            self.robot.stop()
            raise SafetyLimitError(self.robot.name, f"contact force {force:.3f} N exceeds the limit {self.limit_n:.3f} N; motion stopped")
        if self.robot.is_protective_stopped():
            raise DeviceFaultError(self.robot.name, "protective stop during contact")
        return force

    def command(self, down_m_s: float, accel_m_s2: float) -> None:
        """One ``speedL``. It also feeds the controller's watchdog (it writes the command register);
        an explicit kick here would overwrite the command before the controller's next cycle."""
        velocity = np.zeros(6)
        velocity[2] = -down_m_s
        self.robot.speed_linear(velocity, accel_m_s2=accel_m_s2)


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
    lift_clear(robot, clearance_z_m=surface_xyz_m[2] + settings.lift_clearance_mm * 1e-3, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
    travel = np.array([*surface_xyz_m[:2], max(robot.tcp_pose()[2], surface_xyz_m[2] + settings.lift_clearance_mm * 1e-3), *pose[3:]])
    robot.move_linear(travel, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
    above = np.array([*surface_xyz_m[:2], surface_xyz_m[2] + settings.approach_clearance_mm * 1e-3, *pose[3:]])
    robot.move_linear(above, speed_m_s=settings.approach_speed_m_s, accel_m_s2=accel_m_s2)
    sensor.bias()

    loop = _Loop(robot, sensor, clock, max_force_n)
    deadline = clock.deadline(settings.timeout_s)
    target = settings.target_force_n
    stiffness = settings.design_stiffness_n_per_m

    force = loop.read()
    while force < HANDOVER_FRACTION * target:
        if deadline.expired():
            robot.stop()
            raise DeviceTimeoutError(robot.name, f"no contact within {settings.timeout_s:.0f} s (force {force:.3f} N)")
        period = max(loop.period_s, 1e-3)
        loop.command(min(settings.max_speed_m_s, STEP_FRACTION * target / (stiffness * period)), accel_m_s2)
        force = loop.read()

    settled_since: float | None = None
    while True:
        if deadline.expired():
            robot.stop()
            raise DeviceTimeoutError(
                robot.name, f"contact force did not settle at {target:.2f} N within {settings.timeout_s:.0f} s (last {force:.3f} N)")
        gain = min(settings.gain_m_s_per_n, LOOP_MARGIN / (stiffness * max(loop.period_s, 1e-3)))
        loop.command(float(np.clip(gain * (target - force), -settings.max_speed_m_s, settings.max_speed_m_s)), accel_m_s2)
        force = loop.read()
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
    return ContactResult(force_n=mean, force_std_n=std, pose=robot.tcp_pose(), duration_s=clock.now() - started, force_trace=loop.trace)


def lift_clear(robot: Robot, *, clearance_z_m: float, speed_m_s: float, accel_m_s2: float) -> None:
    """Raise the probe straight up to ``clearance_z_m`` unless it is already at or above it."""
    pose = robot.tcp_pose()
    if pose[2] >= clearance_z_m - 1e-4:
        return
    robot.stop()
    target = pose.copy()
    target[2] = clearance_z_m
    robot.move_linear(target, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
