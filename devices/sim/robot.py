"""The UR3 in process: the twin's ``RobotModel`` behind the ``Robot`` interface.

It behaves as ``URRobot`` does against the twin, minus the wire: the same rig-limit checks before any
command, the same errors, and the controller's timing. Every command is an RTDE input update, which
takes one controller cycle and feeds the watchdog; a linear move blocks until the arm arrives, feeding
the watchdog as the driver's watched move does; while the arm is at rest the driver's keep-alive thread
feeds it, which here happens at every step of the clock, until ``close()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shearlab.devices.errors import DeviceFaultError, DeviceTimeoutError
from shearlab.devices.interfaces import DeviceStatus
from shearlab.devices.robot.limits import checked_move, checked_velocity, checked_watchdog_hz
from shearlab.devices.sim.clock import SimClock
from shearlab.devices.twin.robot_model import RobotModel
from shearlab.devices.twin.ur_controller import UNLOCK_DELAY_S
from shearlab.protocols.rig import RobotLimits

# The CB3 reads RTDE inputs at 125 Hz: a command takes effect, and is answered, one cycle later.
CONTROLLER_CYCLE_S = 1 / 125
# speedStop / stopL deceleration, m/s^2: ur_rtde's default, as the driver uses it.
STOP_DECEL_M_S2 = 10.0


@dataclass
class RtdeLink:
    """The state stream of one simulated controller; ``stalled_until`` is virtual time."""

    stalled_until: float = -np.inf


class SimRobot:
    """A ``Robot`` on ``model``; ``link`` carries the injected stream faults."""

    def __init__(self, model: RobotModel, clock: SimClock, link: RtdeLink, *, limits: RobotLimits, name: str = "robot") -> None:
        self.name = name
        self.limits = limits
        self._model = model
        self._clock = clock
        self._link = link
        self._at_rest = True
        self._watchdog_armed = False
        clock.listen(self._keep_alive)

    # -- state -----------------------------------------------------------------------------------

    def tcp_pose(self) -> np.ndarray:
        self._check_stream()
        return self._model.pose()

    def tcp_force(self) -> np.ndarray:
        """As the twin's controller reports it: the contact force along the probe axis."""
        self._check_stream()
        return np.array([0.0, 0.0, self._model.contact_force_n(), 0.0, 0.0, 0.0])

    def is_protective_stopped(self) -> bool:
        self._check_stream()
        return self._model.is_protective_stopped()

    def status(self) -> DeviceStatus:
        if self._model.is_protective_stopped():
            state = "protective stop"
        elif self._model.is_moving():
            state = "moving"
        else:
            state = "idle"
        return DeviceStatus(self.name, identity="UR3 (simulated)", state=state, latency_ms=CONTROLLER_CYCLE_S * 1e3)

    # -- commands --------------------------------------------------------------------------------

    def move_linear(self, pose: np.ndarray, *, speed_m_s: float, accel_m_s2: float) -> None:
        target = checked_move(self.name, self.limits, pose, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
        self._ready("moveL")
        self._at_rest = False
        if not self._model.move_linear(target, speed_m_s, accel_m_s2):
            self._raise_stopped("moveL")
        self._input()
        while self._model.is_moving_linear():
            self._input()
        self._at_rest = True
        if self._model.is_protective_stopped():
            self._raise_stopped("moveL")

    def speed_linear(self, velocity: np.ndarray, *, accel_m_s2: float) -> None:
        xd = checked_velocity(self.name, self.limits, velocity, accel_m_s2=accel_m_s2)
        self._ready("speedL")
        self._at_rest = False
        if not self._model.speed_linear(xd, accel_m_s2):
            self._raise_stopped("speedL")
        self._input()

    def stop(self) -> None:
        """Decelerate to rest; a robot in a protective stop is already at rest."""
        self._model.stop_linear(STOP_DECEL_M_S2)
        self._at_rest = True
        self._input()

    def set_watchdog(self, min_frequency_hz: float) -> None:
        hz = checked_watchdog_hz(self.name, min_frequency_hz)
        self._ready("setWatchdog")
        self._model.set_watchdog(hz)
        self._watchdog_armed = True
        self._input()

    def kick_watchdog(self) -> None:
        """Feed the watchdog; no virtual time, so a kicking thread running in wall time changes nothing."""
        self._model.kick_watchdog()

    def unlock_protective_stop(self) -> None:
        """Unlock once the controller allows it (5 s after the stop), as the driver retries until then."""
        wait_s = UNLOCK_DELAY_S - self._model.seconds_since_protective_stop()
        if self._model.is_protective_stopped() and wait_s > 0:
            self._clock.sleep(wait_s)
        self._model.unlock_protective_stop()
        # A protective stop ends the control script, and the watchdog with it: a new script has none.
        self._watchdog_armed = False

    def close(self) -> None:
        """The control script stops: nothing feeds the watchdog any more."""
        self._clock.forget(self._keep_alive)
        self._watchdog_armed = False

    # -- helpers ---------------------------------------------------------------------------------

    def _input(self) -> None:
        """One RTDE input update: it feeds the watchdog and takes one controller cycle."""
        self._model.kick_watchdog()
        self._clock.sleep(CONTROLLER_CYCLE_S)

    def _keep_alive(self, _now: float) -> None:
        if self._watchdog_armed and self._at_rest:
            self._model.kick_watchdog()

    def _check_stream(self) -> None:
        if self._clock.now() < self._link.stalled_until:
            raise DeviceTimeoutError(self.name, "no RTDE state from the simulated controller: the stream stalled")

    def _ready(self, operation: str) -> None:
        if self.is_protective_stopped():
            raise DeviceFaultError(self.name, f"{operation} refused: the robot is in a protective stop; unlock it first")

    def _raise_stopped(self, operation: str) -> None:
        reason = self._model.protective_stop_reason()
        raise DeviceFaultError(self.name, f"{operation} ended in a protective stop of the robot ({reason}); inspect, then unlock")
