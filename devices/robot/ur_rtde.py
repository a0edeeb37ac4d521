"""UR3 driver over ``ur_rtde``: the :class:`~shearlab.devices.interfaces.Robot` of the rig.

Transport: the unmodified ``ur_rtde`` bindings. ``rtde_receive`` streams the state on TCP 30004;
``rtde_control`` uploads its URScript on 30003, checks the dashboard on 29999 and sends commands
through RTDE input registers. The same class talks to the lab's UR3 or to the twin
(``shearlab.devices.twin.ur_controller``).

=========================  ===============================================  =====================
Robot method               ur_rtde call                                     refused before I/O
=========================  ===============================================  =====================
``move_linear``            ``RTDEControlInterface.moveL(pose, v, a, async)`` outside box; v, a
``speed_linear``           ``RTDEControlInterface.speedL(xd, a, 0)``        linear speed; a
``stop``                   ``RTDEControlInterface.speedStop(10)``           --
``set_watchdog``           ``RTDEControlInterface.setWatchdog(f)``          f <= 0
``kick_watchdog``          ``RTDEControlInterface.kickWatchdog()``          --
``tcp_pose``               ``RTDEReceiveInterface.getActualTCPPose()``      --
``is_protective_stopped``  ``RTDEReceiveInterface.isProtectiveStopped()``   --
``unlock_protective_stop`` ``DashboardClient.unlockProtectiveStop()``       --
``status``                 ``DashboardClient.polyscopeVersion()`` ...       --
=========================  ===============================================  =====================

With a watchdog armed, ``move_linear`` cannot block inside ``moveL``: the client sends no RTDE input
while it waits, so the watchdog would stop the arm mid-move, and a kick from another thread would wait
on the same command handshake. It then starts the move asynchronously and polls the control script's
progress register (``getAsyncOperationProgressEx``), kicking the watchdog between polls.

Limits (workspace box, speed, acceleration) come from the rig file; a refused command raises
:class:`SafetyLimitError` (or ``ValueError`` for a malformed argument) and sends nothing. Failures
on the link raise :class:`DeviceConnectionError`; a stalled state stream :class:`DeviceTimeoutError`;
a protective stop :class:`DeviceFaultError`. Every message names the device and the address.

The C++ constructors hold the GIL while they connect, and a TCP connect to an absent host can take
minutes; ``connect()`` therefore first probes the three ports from Python with the clock's I/O
timeout, so an unreachable robot fails fast with :class:`DeviceConnectionError`.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

from shearlab.devices.clock import MIN_IO_TIMEOUT_WALL_S, Clock
from shearlab.devices.errors import (
    DeviceConnectionError,
    DeviceError,
    DeviceFaultError,
    DeviceTimeoutError,
)
from shearlab.devices.interfaces import DeviceStatus
from shearlab.devices.robot.limits import checked_move, checked_velocity, checked_watchdog_hz
from shearlab.protocols.rig import RobotLimits

RTDE_PORT = 30004
DASHBOARD_PORT = 29999
SCRIPT_PORT = 30003
# A port probe is one TCP handshake: 2 s virtual, never below the clock's wall-time floor.
_PROBE_TIMEOUT_S = 2.0
# The CB3 streams state at 125 Hz: 25 missing packets (0.2 s) mean a stalled stream, unless that is
# shorter than the I/O floor a loaded machine needs.
_STALE_WALL_S = max(25 / 125, MIN_IO_TIMEOUT_WALL_S)
# Polling period of wait loops, virtual seconds.
_POLL_S = 0.05
# The TCP counts as still below this speed, m/s (the controller's own resolution is ~1e-5).
_STILL_M_S = 1e-4
# speedStop / stop deceleration, m/s^2: ur_rtde's default, a firm but not violent stop.
_STOP_DECEL_M_S2 = 10.0
# A watched move polls (and kicks) four times per watchdog period, and at least every 20 ms wall.
_WATCH_POLLS_PER_PERIOD = 4
_WATCH_MAX_POLL_WALL_S = 0.02
# A watched move may take its profile's duration times this, plus the slack below, virtual seconds.
_MOVE_TIME_FACTOR = 3.0
_MOVE_TIME_SLACK_S = 5.0
# PolyScope accepts "unlock protective stop" only 5 s after the stop: retry for a little longer, asking
# every half second, until the dashboard's safety status leaves PROTECTIVE_STOP.
_UNLOCK_RETRY_S = 8.0
_UNLOCK_POLL_S = 0.5
_PROTECTIVE_STOP = "PROTECTIVE_STOP"
_PROGRAM_START_S = 5.0


class URRobot:
    """A UR arm driven through ``ur_rtde``.

    Parameters
    ----------
    host
        Controller address (the lab's UR3, or a twin's loopback address such as ``127.0.0.5``).
    limits
        Safety limits from the rig file; commands beyond them are refused before any I/O.
    clock
        Every wait goes through it (``Clock(speed)`` for a twin running ``speed`` times real time).
    name
        The rig's name for the device, used in every error message.
    """

    def __init__(self, host: str, *, limits: RobotLimits, clock: Clock, name: str = "robot") -> None:
        self.name = name
        self.host = str(host)
        self.limits = limits
        self.clock = clock
        self._receive: Any = None
        self._control: Any = None
        self._last_timestamp: float | None = None
        self._last_timestamp_wall = 0.0
        # The armed watchdog's minimum kick frequency, Hz; None while no watchdog is armed.
        self._watchdog_hz: float | None = None
        # One command at a time: ur_rtde's commands share the script's command register.
        self._command_lock = threading.RLock()
        self._last_command_wall = 0.0
        # True while the arm is commanded to rest (not streaming speedL): only then does the
        # keep-alive thread kick the watchdog for an idle client.
        self._at_rest = True
        self._keepalive: threading.Thread | None = None

    # -- connection ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the receive and control interfaces (uploads the control script); idempotent."""
        if self._control is not None:
            return
        for port in (DASHBOARD_PORT, RTDE_PORT, SCRIPT_PORT):
            self._probe(port)
        import rtde_control
        import rtde_receive

        try:
            self._receive = rtde_receive.RTDEReceiveInterface(self.host)
        except (RuntimeError, ValueError) as exc:
            raise DeviceConnectionError(self.name, f"RTDE receive at {self.host}:{RTDE_PORT} failed: {exc}") from exc
        try:
            self._control = rtde_control.RTDEControlInterface(self.host)
        except (RuntimeError, ValueError) as exc:
            stopped = self._receive.isProtectiveStopped()
            self._receive = None
            if stopped:
                raise DeviceFaultError(
                    self.name,
                    f"the controller at {self.host} is in a protective stop and will not run the control "
                    "script; inspect the cause and unlock it from the pendant or the dashboard",
                ) from exc
            raise DeviceConnectionError(self.name, f"RTDE control at {self.host} failed: {exc}") from exc
        self._last_timestamp = None
        self._watchdog_hz = None

    def close(self) -> None:
        """Stop the control script and disconnect; safe to call twice."""
        control, self._control = self._control, None
        self._watchdog_hz = None
        if control is not None:
            try:
                if control.isConnected():
                    control.stopScript()
                # Explicitly: a control interface that outlives its twin (a traceback can hold it)
                # would otherwise keep trying to reconnect in its own thread.
                control.disconnect()
            except (RuntimeError, ValueError):
                pass  # closing a link that is already gone must not fail
        # The receive interface only stops on a lost link; its destructor disconnects (0.5 s).
        self._receive = None

    def __enter__(self) -> URRobot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._control is not None

    # -- state -----------------------------------------------------------------------------------

    def tcp_pose(self) -> np.ndarray:
        """Actual TCP pose, shape (6,): metres and axis-angle radians, UR base frame."""
        receive = self._fresh_receive()
        with self._translate("getActualTCPPose"):
            return np.array(receive.getActualTCPPose(), dtype=float)

    def tcp_force(self) -> np.ndarray:
        """The controller's TCP wrench, shape (6,): N and N m."""
        receive = self._fresh_receive()
        with self._translate("getActualTCPForce"):
            return np.array(receive.getActualTCPForce(), dtype=float)

    def tcp_speed(self) -> np.ndarray:
        """Actual TCP velocity, shape (6,): m/s and rad/s."""
        receive = self._fresh_receive()
        with self._translate("getActualTCPSpeed"):
            return np.array(receive.getActualTCPSpeed(), dtype=float)

    def is_protective_stopped(self) -> bool:
        receive = self._fresh_receive()
        with self._translate("isProtectiveStopped"):
            return bool(receive.isProtectiveStopped())

    def wait_until_still(self, timeout_s: float) -> None:
        """Block until the TCP speed is below 0.1 mm/s; ``DeviceTimeoutError`` after ``timeout_s``."""
        deadline = self.clock.deadline(timeout_s)
        while float(np.linalg.norm(self.tcp_speed()[:3])) >= _STILL_M_S:
            if deadline.expired():
                raise DeviceTimeoutError(self.name, f"TCP still moving {timeout_s:g} s after the wait began")
            self.clock.sleep(_POLL_S)

    def status(self) -> DeviceStatus:
        """Identity from the dashboard, state, and the wall time to the next state packet."""
        if self._receive is None:
            return DeviceStatus(self.name, identity="", state="disconnected", latency_ms=math.nan)
        identity = self._identity()
        start = time.perf_counter()
        first = self._receive.getTimestamp()
        latency_deadline = start + 2 * _STALE_WALL_S
        while self._receive.getTimestamp() == first and time.perf_counter() < latency_deadline:
            time.sleep(1e-4)
        latency_ms = (time.perf_counter() - start) * 1e3
        try:
            if self.is_protective_stopped():
                state = "protective stop"
            elif float(np.linalg.norm(self.tcp_speed()[:3])) >= _STILL_M_S:
                state = "moving"
            else:
                state = "idle"
        except DeviceError as exc:
            state = f"error: {exc.message}"
        return DeviceStatus(self.name, identity=identity, state=state, latency_ms=latency_ms)

    # -- commands --------------------------------------------------------------------------------

    def move_linear(self, pose: np.ndarray, *, speed_m_s: float, accel_m_s2: float) -> None:
        """Straight-line move of the TCP to ``pose`` (6,), metres and axis-angle radians; returns at the end.

        With a watchdog armed (:meth:`set_watchdog`) the move runs asynchronously and is watched, the
        watchdog kicked, until it ends; it raises ``DeviceTimeoutError`` (after stopping the arm) if it
        has not ended within three times its profile's duration plus 5 s.
        """
        target = checked_move(self.name, self.limits, pose, speed_m_s=speed_m_s, accel_m_s2=accel_m_s2)
        control = self._ready_control("moveL")
        if self._watchdog_hz is not None:
            self._move_linear_watched(control, target, float(speed_m_s), float(accel_m_s2), self._watchdog_hz)
        else:
            with self._command("moveL"):
                done = control.moveL([float(v) for v in target], float(speed_m_s), float(accel_m_s2), False)
            if not done:
                self._raise_refused("moveL")
        self._at_rest = True
        self._await_new_states(2)

    def _move_linear_watched(
        self, control: Any, target: np.ndarray, speed_m_s: float, accel_m_s2: float, hz: float
    ) -> None:
        """Asynchronous moveL, polled until the script reports its end, kicking the watchdog meanwhile."""
        start = self.tcp_pose()
        with self._command("getAsyncOperationProgressEx"):
            before = control.getAsyncOperationProgressEx().operationId()
        with self._command("moveL"):
            started = control.moveL([float(v) for v in target], speed_m_s, accel_m_s2, True)
        if not started:
            self._raise_refused("moveL")
        # The kicks are a liveness check on the client, so the poll period is set in wall time.
        poll_s = min(1.0 / (_WATCH_POLLS_PER_PERIOD * hz), _WATCH_MAX_POLL_WALL_S) * self.clock.speed
        allowed_s = _MOVE_TIME_FACTOR * _move_duration_s(start, target, speed_m_s, accel_m_s2) + _MOVE_TIME_SLACK_S
        deadline = self.clock.deadline(allowed_s)
        while True:
            if self.is_protective_stopped():
                self._raise_refused("moveL")
            with self._command("getAsyncOperationProgressEx"):
                running = control.isProgramRunning()
                status = control.getAsyncOperationProgressEx()
            if not running:
                # A protective stop ends the script; the receive side may see the stop a packet later.
                self._await_new_states(2)
                if self.is_protective_stopped():
                    self._raise_refused("moveL")
                raise DeviceFaultError(self.name, f"moveL: the control script on {self.host} stopped during the move")
            # The script writes a new operation id when the move starts, so an id unchanged since
            # before the call means the move has not shown up yet, not that it ended.
            if status.operationId() != before and not status.isAsyncOperationRunning():
                return
            if deadline.expired():
                with suppress(DeviceError):
                    self._stop_linear(control)
                raise DeviceTimeoutError(
                    self.name, f"moveL on {self.host} did not finish within {allowed_s:.3g} s; the arm was stopped"
                )
            self.kick_watchdog()
            self.clock.sleep(poll_s)

    def _stop_linear(self, control: Any) -> None:
        with self._command("stopL"):
            control.stopL(_STOP_DECEL_M_S2, False)

    def speed_linear(self, velocity: np.ndarray, *, accel_m_s2: float) -> None:
        """Start a TCP velocity command (6,), m/s and rad/s; runs until changed or ``stop()``."""
        xd = checked_velocity(self.name, self.limits, velocity, accel_m_s2=accel_m_s2)
        control = self._ready_control("speedL")
        self._at_rest = False
        with self._command("speedL"):
            done = control.speedL([float(v) for v in xd], float(accel_m_s2), 0.0)
        if not done:
            self._raise_refused("speedL")

    def stop(self) -> None:
        """Decelerate any velocity command to rest; a robot already in protective stop is at rest."""
        control = self._require_control()
        with self._command("speedStop"):
            done = control.speedStop(_STOP_DECEL_M_S2)
        self._at_rest = True
        if not done and not self.is_protective_stopped():
            self._raise_refused("speedStop")

    def set_watchdog(self, min_frequency_hz: float) -> None:
        """Arm the controller-side watchdog: without a kick this often, the robot stops."""
        hz = checked_watchdog_hz(self.name, min_frequency_hz)
        control = self._ready_control("setWatchdog")
        with self._command("setWatchdog"):
            done = control.setWatchdog(hz)
        if not done:
            self._raise_refused("setWatchdog")
        self._watchdog_hz = hz
        if self._keepalive is None or not self._keepalive.is_alive():
            self._keepalive = threading.Thread(target=self._keep_alive, name=f"{self.name}-keepalive", daemon=True)
            self._keepalive.start()

    def _keep_alive(self) -> None:
        """Kick the watchdog for a client that is alive but busy elsewhere (writing files, waiting
        for the scanner) while the arm is at rest.

        The watchdog exists to stop an arm left moving by a dead client. While the arm streams
        velocity commands each command feeds the watchdog and this thread stays quiet (a kick would
        also overwrite a command before the controller read it); at rest, a process that dies takes
        this thread with it and the watchdog still trips.
        """
        while self._control is not None and self._watchdog_hz is not None:
            period_wall_s = 1.0 / self._watchdog_hz
            time.sleep(period_wall_s / 4)
            quiet_for = time.monotonic() - self._last_command_wall
            if not self._at_rest or quiet_for < period_wall_s / 4:
                continue
            if not self._command_lock.acquire(timeout=period_wall_s / 4):
                continue
            try:
                if self._control is not None and self._watchdog_hz is not None and self._at_rest:
                    self.kick_watchdog()
            except DeviceError:
                return
            finally:
                self._command_lock.release()

    def kick_watchdog(self) -> None:
        control = self._require_control()
        with self._command("kickWatchdog"):
            done = control.kickWatchdog()
        if not done:
            self._raise_refused("kickWatchdog")

    def zero_ft_sensor(self) -> None:
        """Zero the controller's wrist force estimate (``zeroFtSensor``)."""
        control = self._ready_control("zeroFtSensor")
        with self._command("zeroFtSensor"):
            done = control.zeroFtSensor()
        if not done:
            self._raise_refused("zeroFtSensor")

    def unlock_protective_stop(self) -> None:
        """Unlock a protective stop through the dashboard and restart the control script."""
        with _dashboard(self.host, self.name) as dashboard:
            _unlock(dashboard, clock=self.clock, host=self.host, name=self.name)
        control = self._require_control()
        # A protective stop ends the control script, and the watchdog with it: a new script has none.
        self._watchdog_hz = None
        with self._command("reuploadScript"):
            control.reuploadScript()
        deadline = self.clock.deadline(_PROGRAM_START_S)
        while not control.isProgramRunning():
            if deadline.expired():
                raise DeviceTimeoutError(self.name, f"control script did not restart on {self.host} after the unlock")
            self.clock.sleep(_POLL_S)

    # -- helpers ---------------------------------------------------------------------------------

    def _probe(self, port: int) -> None:
        timeout = self.clock.io_timeout(_PROBE_TIMEOUT_S)
        try:
            with socket.create_connection((self.host, port), timeout=timeout):
                pass
        except OSError as exc:
            raise DeviceConnectionError(
                self.name, f"cannot reach the UR controller at {self.host}:{port} ({exc.strerror or exc})"
            ) from exc

    def _require_control(self) -> Any:
        if self._control is None:
            raise DeviceConnectionError(self.name, f"not connected to {self.host}; call connect() first")
        # A command on a control interface that lost its link blocks inside ur_rtde (which keeps
        # trying to reconnect); refuse it here instead.
        if not self._control.isConnected():
            raise DeviceConnectionError(self.name, f"lost the RTDE control link to {self.host}:{RTDE_PORT}")
        return self._control

    def _ready_control(self, operation: str) -> Any:
        """The control interface, after checking the stream is alive and there is no protective stop."""
        control = self._require_control()
        if self.is_protective_stopped():
            raise DeviceFaultError(
                self.name, f"{operation} refused: the robot at {self.host} is in a protective stop; unlock it first"
            )
        return control

    def _fresh_receive(self) -> Any:
        """The receive interface, once the RTDE stream is shown to be connected and advancing."""
        if self._receive is None:
            raise DeviceConnectionError(self.name, f"not connected to {self.host}; call connect() first")
        with self._translate("RTDE receive"):
            connected = self._receive.isConnected()
            timestamp = self._receive.getTimestamp()
        if not connected:
            raise DeviceConnectionError(self.name, f"RTDE state stream from {self.host}:{RTDE_PORT} was lost")
        now = time.monotonic()
        if timestamp != self._last_timestamp:
            self._last_timestamp, self._last_timestamp_wall = timestamp, now
        elif now - self._last_timestamp_wall > _STALE_WALL_S:
            raise DeviceTimeoutError(
                self.name,
                f"no RTDE state from {self.host}:{RTDE_PORT} for {now - self._last_timestamp_wall:.2f} s; "
                "the stream stalled",
            )
        return self._receive

    def _await_new_states(self, count: int) -> None:
        """Wait for ``count`` new state packets, so that reads after a finished move see its end.

        The control and receive interfaces use separate RTDE connections: the packet that tells the
        control side "done" may reach it before the receive side has the final pose.
        """
        deadline = time.monotonic() + count * _STALE_WALL_S
        seen = self._receive.getTimestamp()
        while count > 0 and time.monotonic() < deadline:
            time.sleep(1e-3)
            now = self._receive.getTimestamp()
            if now != seen:
                seen, count = now, count - 1

    def _identity(self) -> str:
        import dashboard_client

        dashboard = dashboard_client.DashboardClient(self.host)
        try:
            dashboard.connect()
            version = dashboard.polyscopeVersion()
            model = dashboard.getRobotModel()
            try:
                serial = dashboard.getSerialNumber()
            except RuntimeError:
                serial = ""  # PolyScope < 5.6 has no serial-number command
        except RuntimeError as exc:
            return f"dashboard at {self.host}:{DASHBOARD_PORT} unavailable ({exc})"
        finally:
            dashboard.disconnect()
        return " ".join(p for p in (model, f"PolyScope {version}", f"serial {serial}" if serial else "") if p)

    def _raise_refused(self, operation: str) -> None:
        # The control side learns of a stop from its own RTDE connection; let the receive side
        # catch up before asking it why.
        if self._receive is not None and self._receive.isConnected():
            self._await_new_states(2)
        if self._receive is not None and self._receive.isConnected() and self._receive.isProtectiveStopped():
            raise DeviceFaultError(
                self.name, f"{operation} ended in a protective stop of the robot at {self.host}; inspect, then unlock"
            )
        if self._receive is None or not self._receive.isConnected():
            raise DeviceConnectionError(self.name, f"{operation}: lost the RTDE link to {self.host}:{RTDE_PORT}")
        raise DeviceFaultError(self.name, f"{operation} refused by the controller at {self.host}")

    @contextmanager
    def _translate(self, operation: str) -> Iterator[None]:
        try:
            yield
        except (RuntimeError, ValueError) as exc:
            raise DeviceConnectionError(self.name, f"{operation} at {self.host} failed: {exc}") from exc

    @contextmanager
    def _command(self, operation: str) -> Iterator[None]:
        """A control-interface call: one at a time, errors translated, time noted for the keep-alive."""
        with self._command_lock, self._translate(operation):
            try:
                yield
            finally:
                self._last_command_wall = time.monotonic()


def _move_duration_s(start: np.ndarray, target: np.ndarray, speed: float, accel: float) -> float:
    """Duration of movel's trapezoidal profile from ``start`` to ``target`` (6,), seconds.

    The path is the translation, or the rotation angle for a pure re-orientation (movel then applies
    ``speed`` and ``accel`` to it in rad/s and rad/s^2).
    """
    length = float(np.linalg.norm(target[:3] - start[:3])) or float(np.linalg.norm(target[3:] - start[3:]))
    if length <= speed**2 / accel:
        return 2.0 * math.sqrt(length / accel)
    return length / speed + speed / accel


def release_protective_stop(host: str, *, clock: Clock, confirm: Callable[[str], None], message: str,
                            name: str = "robot", twin_token: str | None = None) -> bool:
    """Unlock a protective stop through the dashboard (port 29999) after ``confirm(message)``.

    ``RTDEControlInterface`` cannot connect while the arm is stopped (the controller will not run its
    script), so an interrupted run is recovered here, before :meth:`URRobot.connect`. Returns whether
    there was a stop to release; raises ``DeviceFaultError`` if the controller keeps refusing.
    ``twin_token``: a twin serving a network unlocks only for a connection that sent its token first.
    """
    with _dashboard(host, name) as dashboard:
        if _PROTECTIVE_STOP not in str(dashboard.safetystatus()):
            return False
        confirm(message)
        if twin_token is not None:
            dashboard.send(f"token {twin_token}\n")
            dashboard.receive()
        _unlock(dashboard, clock=clock, host=host, name=name)
    return True


@contextmanager
def _dashboard(host: str, name: str) -> Iterator[Any]:
    """A connected ``DashboardClient``; ``DeviceConnectionError`` if the dashboard does not answer."""
    import dashboard_client

    dashboard = dashboard_client.DashboardClient(host)
    try:
        dashboard.connect()
    except RuntimeError as exc:
        raise DeviceConnectionError(name, f"dashboard at {host}:{DASHBOARD_PORT} unreachable: {exc}") from exc
    try:
        yield dashboard
    finally:
        dashboard.disconnect()


def _unlock(dashboard: Any, *, clock: Clock, host: str, name: str) -> None:
    """The one unlock path: ask until the safety status leaves PROTECTIVE_STOP, for ``_UNLOCK_RETRY_S``."""
    deadline = clock.deadline(_UNLOCK_RETRY_S)
    while True:
        try:
            # ur_rtde 1.6 raises on a refusal ("Cannot unlock protective stop until 5s after occurrence");
            # older versions return False.
            answer = "" if dashboard.unlockProtectiveStop() is not False else "unlock refused"
        except RuntimeError as exc:
            answer = str(exc)
        if not answer and _PROTECTIVE_STOP not in str(dashboard.safetystatus()):
            return
        if deadline.expired():
            raise DeviceFaultError(name, f"the controller at {host} did not unlock the protective stop {answer}".rstrip())
        clock.sleep(_UNLOCK_POLL_S)
