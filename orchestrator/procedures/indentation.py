"""One unconfined-compression run of one cylinder on the hexapod rig (SPEC §2).

Approach until first touch, back off, zero the Nano17 in air, descend at 0.01 mm/s while logging
force and plate position at 200 Hz until 2 N (or the strain or travel limit), halt, retract. The
force limit is enforced inside the logging loop: the hexapod is halted the moment it is reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.errors import DeviceTimeoutError, SafetyLimitError
from shearlab.devices.interfaces import ForceSensor, Hexapod
from shearlab.protocols.plans import IndentationSettings
from shearlab.protocols.rig import HexapodLimits

# Back-off after first touch before zeroing the sensor in air, mm.
BACKOFF_MM = 0.1


@dataclass
class IndentationLog:
    """Raw log of one run. Arrays shape (n,): virtual time s, plate Z mm, Nano17 Fz N (biased)."""

    time_s: np.ndarray
    plate_z_mm: np.ndarray
    force_n: np.ndarray
    touch_z_mm: float
    stop_reason: str


def _fz(sensor: ForceSensor) -> float:
    return float(sensor.read().force_n[2])


def find_touch(hexapod: Hexapod, sensor: ForceSensor, clock: Clock, settings: IndentationSettings, limits: HexapodLimits) -> float:
    """Lower the plate at the approach speed until the force passes the touch threshold; return Z."""
    start_z = hexapod.position()["Z"]
    hexapod.set_velocity(settings.approach_speed_mm_s)
    hexapod.move_absolute({"Z": start_z - limits.max_travel_mm})
    deadline = clock.deadline(limits.max_travel_mm / settings.approach_speed_mm_s * 1.5 + 5)
    while True:
        force = _fz(sensor)
        if force >= settings.touch_force_n:
            hexapod.halt()
            return hexapod.position()["Z"]
        if force >= limits.max_force_n:
            hexapod.halt()
            raise SafetyLimitError(hexapod.name, f"force {force:.3f} N during approach")
        if not hexapod.is_moving() or deadline.expired():
            hexapod.halt()
            raise DeviceTimeoutError(hexapod.name, f"no touch within {limits.max_travel_mm} mm travel: is a cylinder in place?")


def indent(hexapod: Hexapod, sensor: ForceSensor, clock: Clock, settings: IndentationSettings, limits: HexapodLimits, *,
           length_mm: float) -> IndentationLog:
    """Run one indentation; the hexapod is halted and the plate retracted whatever happens."""
    hexapod.reference()
    sensor.bias()
    start_z = hexapod.position()["Z"]
    try:
        first_touch = find_touch(hexapod, sensor, clock, settings, limits)
        hexapod.set_velocity(settings.approach_speed_mm_s)
        hexapod.move_absolute({"Z": first_touch + BACKOFF_MM})
        hexapod.wait_on_target(timeout_s=60)
        sensor.bias()
        log = _log_descent(hexapod, sensor, clock, settings, limits, length_mm=length_mm, start_z=start_z)
    finally:
        hexapod.halt()
        hexapod.set_velocity(min(limits.max_velocity_mm_s, 1.0))
        hexapod.move_absolute({"Z": start_z})
        hexapod.wait_on_target(timeout_s=120)
    return log


def _log_descent(hexapod, sensor, clock, settings, limits, *, length_mm, start_z) -> IndentationLog:
    period = 1.0 / settings.sample_rate_hz
    hexapod.set_velocity(settings.plate_speed_mm_s)
    # Aim past the strain stop so the run ends on strain (or force), not on the end of the move.
    floor = max(start_z - limits.max_travel_mm, hexapod.position()["Z"] - settings.max_strain * length_mm - 2 * BACKOFF_MM - 0.5)
    hexapod.move_absolute({"Z": floor})
    times, zs, forces = [], [], []
    touch_z = None
    reason = "travel limit"
    next_t = clock.now()
    while True:
        force = _fz(sensor)
        z = hexapod.position()["Z"]
        t = clock.now()
        times.append(t)
        zs.append(z)
        forces.append(force)
        if touch_z is None and force >= settings.touch_force_n:
            touch_z = z
        if force >= settings.stop_force_n or force >= limits.max_force_n:
            hexapod.halt()
            reason = f"force {force:.3f} N reached"
            break
        if touch_z is not None and (touch_z - z) / length_mm >= settings.max_strain:
            hexapod.halt()
            reason = f"strain {settings.max_strain:.0%} reached"
            break
        if not hexapod.is_moving():
            break
        next_t += period
        clock.sleep(next_t - clock.now())
    if touch_z is None:
        raise DeviceTimeoutError(sensor.name, "the force never rose during the descent: the cylinder was lost")
    return IndentationLog(np.array(times), np.array(zs), np.array(forces), touch_z, reason)
