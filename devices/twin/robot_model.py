"""The UR3's Cartesian motion on the twin's virtual clock, with contact safety and a watchdog.

The model holds the TCP (probe face) pose in the UR base frame ``(x, y, z, rx, ry, rz)``: metres and
an axis-angle rotation vector in radians. It has no joint kinematics: linear moves are straight lines
in Cartesian space, as ``movel`` makes them, and orientation is interpolated along the rotation vector
(exact for a rotation about a fixed axis, close enough for the small re-orientations of a probe).

State advances lazily: every public call first integrates the motion from the last update to
``clock.now()`` in fixed virtual sub-steps. At every sub-step the world's compressive force on the
probe is evaluated; the first sub-step beyond ``force_limit_n`` is refined by bisection, the arm
freezes there and enters a protective stop, as the real controller's force limit does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shearlab.devices.clock import Clock

# 4 ms virtual: at the UR3's 0.25 m/s tool speed limit the TCP moves at most 1 mm per sub-step, less
# than any phantom feature, so no contact is stepped over; bisection then pins the first over-limit
# pose to 4 ms / 2^18 (~4 nm of travel), so the latched force overshoots the limit by the contact
# stiffness times that distance (< 1 uN for gelatin). Motion within a sub-step is integrated exactly.
_SUBSTEP_S = 4e-3
_BISECTION_STEPS = 18
# Below this speed the arm counts as still (m/s and rad/s); the controller's own "is steady" tolerance.
_STILL_SPEED = 1e-6
# Pure re-orientations (no translation) of a linear move run at this angular speed, rad/s.
_ROTATION_SPEED_RAD_S = 1.0
DEFAULT_INITIAL_POSE = np.array([0.0, 0.0, 0.30, np.pi, 0.0, 0.0])


@dataclass
class _LinearMove:
    """A trapezoidal-profile straight line from ``start`` to ``target`` begun at virtual ``t0``."""

    start: np.ndarray
    target: np.ndarray
    t0: float
    speed: float
    accel: float

    def __post_init__(self) -> None:
        delta = self.target[:3] - self.start[:3]
        self.length = float(np.linalg.norm(delta))
        self.direction = delta / self.length if self.length > 0 else np.zeros(3)
        if self.length > 0:
            if self.length <= self.speed**2 / self.accel:
                self.t_ramp = float(np.sqrt(self.length / self.accel))
                self.peak = self.accel * self.t_ramp
                self.t_cruise = 0.0
            else:
                self.t_ramp = self.speed / self.accel
                self.peak = self.speed
                self.t_cruise = (self.length - self.speed**2 / self.accel) / self.speed
            self.duration = 2 * self.t_ramp + self.t_cruise
        else:
            angle = float(np.linalg.norm(self.target[3:] - self.start[3:]))
            self.t_ramp = self.t_cruise = self.peak = 0.0
            self.duration = angle / _ROTATION_SPEED_RAD_S

    def _path(self, t: float) -> tuple[float, float]:
        """Distance travelled and speed along the line ``t`` seconds after the start."""
        t = min(max(t, 0.0), self.duration)
        if self.length == 0:
            return 0.0, 0.0
        a, tr, tc = self.accel, self.t_ramp, self.t_cruise
        if t < tr:
            return 0.5 * a * t * t, a * t
        if t < tr + tc:
            return 0.5 * a * tr * tr + self.peak * (t - tr), self.peak
        tau = self.duration - t
        return self.length - 0.5 * a * tau * tau, a * tau

    def state(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        t = now - self.t0
        distance, speed = self._path(t)
        if self.length > 0:
            fraction = distance / self.length
        else:
            fraction = min(max(t / self.duration, 0.0), 1.0) if self.duration > 0 else 1.0
        pose = self.start + fraction * (self.target - self.start)
        pose[:3] = self.start[:3] + distance * self.direction
        velocity = np.zeros(6)
        velocity[:3] = speed * self.direction
        if self.length > 0 and self.duration > 0:
            velocity[3:] = (self.target[3:] - self.start[3:]) * (speed / self.length)
        elif 0 < t < self.duration:
            velocity[3:] = (self.target[3:] - self.start[3:]) / self.duration
        return pose, velocity

    def finished(self, now: float) -> bool:
        return now - self.t0 >= self.duration


class RobotModel:
    """Kinematic state of the arm, advanced lazily from the clock; thread-safe.

    Parameters
    ----------
    clock
        The twin's virtual clock.
    contact_force_n
        The world's compressive force on the probe (N, >= 0) for a TCP pose of shape (6,).
    force_limit_n
        Protective stop when the contact force exceeds this, N.
    initial_pose
        Starting TCP pose, shape (6,); default 0.30 m above the base, probe pointing down.
    max_speed_m_s, max_accel_m_s2
        The controller clamps commanded tool speed and acceleration to these.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        contact_force_n: Callable[[np.ndarray], float],
        force_limit_n: float = 5.0,
        initial_pose: np.ndarray | None = None,
        max_speed_m_s: float = 0.25,
        max_accel_m_s2: float = 1.2,
    ) -> None:
        if force_limit_n <= 0 or max_speed_m_s <= 0 or max_accel_m_s2 <= 0:
            raise ValueError("force_limit_n, max_speed_m_s and max_accel_m_s2 must be > 0")
        self._clock = clock
        self._contact = contact_force_n
        self.force_limit_n = float(force_limit_n)
        self.max_speed_m_s = float(max_speed_m_s)
        self.max_accel_m_s2 = float(max_accel_m_s2)
        pose = DEFAULT_INITIAL_POSE if initial_pose is None else initial_pose
        self._pose = np.array(pose, dtype=float).reshape(6)
        self._velocity = np.zeros(6)
        self._move: _LinearMove | None = None
        self._speed_target: np.ndarray | None = None
        self._speed_accel = 0.0
        self._speed_until = np.inf
        self._t = clock.now()
        self._lock = threading.RLock()
        self._watchdog_period_s = 0.0
        self._last_kick = self._t
        self._stopped_reason: str | None = None
        self._stopped_at = -np.inf

    # -- commands --------------------------------------------------------------------------------

    def move_linear(self, pose: np.ndarray, speed: float, accel: float) -> bool:
        """Start a straight-line move to ``pose`` (6,); ``False`` when refused (protective stop)."""
        target = np.asarray(pose, dtype=float).reshape(6)
        with self._lock:
            self._advance()
            if self._stopped_reason is not None:
                return False
            # A move commanded while moving starts from the present pose at rest, as a new movel does
            # after the previous one is killed; the velocity jump is the controller's business.
            self._speed_target = None
            self._move = _LinearMove(
                self._pose.copy(), target, self._t, self._clamp_speed(speed), self._clamp_accel(accel)
            )
            return True

    def speed_linear(self, velocity: np.ndarray, accel: float, duration_s: float = 0.0) -> bool:
        """Ramp to TCP velocity (6,) (m/s, rad/s) at ``accel``; keep it for ``duration_s`` (0: until
        the next command), then decelerate. ``False`` when refused (protective stop)."""
        target = np.asarray(velocity, dtype=float).reshape(6).copy()
        norm = np.linalg.norm(target[:3])
        if norm > self.max_speed_m_s:
            target[:3] *= self.max_speed_m_s / norm
        with self._lock:
            self._advance()
            if self._stopped_reason is not None:
                return False
            self._take_over_from_move()
            self._speed_target = target
            self._speed_accel = self._clamp_accel(accel)
            self._speed_until = self._t + duration_s if duration_s > 0 else np.inf
            return True

    def speed_stop(self, decel: float) -> None:
        """Decelerate a velocity command to rest."""
        self.stop_linear(decel)

    def stop_linear(self, decel: float) -> None:
        """Decelerate any motion (move or velocity) to rest at ``decel`` m/s^2."""
        with self._lock:
            self._advance()
            if self._stopped_reason is not None:
                return
            self._take_over_from_move()
            self._speed_target = np.zeros(6)
            self._speed_accel = max(float(decel), 1e-9)
            self._speed_until = np.inf

    def set_watchdog(self, min_frequency_hz: float) -> None:
        """Arm the watchdog (0 disarms): not kicked within ``1 / min_frequency_hz`` -> protective stop.

        The watchdog checks that the client is alive, and a client's code runs in wall time whatever
        the twin's speed: the period is ``1 / min_frequency_hz`` wall seconds, i.e. that times the
        clock's speed in virtual seconds.
        """
        with self._lock:
            self._advance()
            self._watchdog_period_s = self._clock.speed / min_frequency_hz if min_frequency_hz > 0 else 0.0
            self._last_kick = self._t

    def kick_watchdog(self) -> None:
        with self._lock:
            self._advance()
            self._last_kick = self._t

    def trigger_protective_stop(self, reason: str) -> None:
        """Stop at once where the arm is (a protective stop halts within a few ms) and latch."""
        with self._lock:
            self._advance()
            self._latch_stop(reason)

    def unlock_protective_stop(self) -> None:
        with self._lock:
            self._advance()
            self._stopped_reason = None
            self._watchdog_period_s = 0.0

    # -- state -----------------------------------------------------------------------------------

    def pose(self) -> np.ndarray:
        """Actual TCP pose, shape (6,), m and rad."""
        with self._lock:
            self._advance()
            return self._pose.copy()

    def velocity(self) -> np.ndarray:
        """Actual TCP velocity, shape (6,), m/s and rad/s."""
        with self._lock:
            self._advance()
            return self._velocity.copy()

    def contact_force_n(self) -> float:
        """The world's compressive force on the probe at the present pose, N."""
        return float(self._contact(self.pose()))

    def is_moving(self) -> bool:
        with self._lock:
            self._advance()
            return self._move is not None or self._speed_target is not None

    def is_moving_linear(self) -> bool:
        """Whether a linear move is under way: not yet at its target, stopped or taken over."""
        with self._lock:
            self._advance()
            return self._move is not None

    def is_protective_stopped(self) -> bool:
        with self._lock:
            self._advance()
            return self._stopped_reason is not None

    def protective_stop_reason(self) -> str | None:
        with self._lock:
            self._advance()
            return self._stopped_reason

    def seconds_since_protective_stop(self) -> float:
        """Virtual seconds since the latest protective stop (inf if none)."""
        with self._lock:
            self._advance()
            return self._t - self._stopped_at

    def snapshot(self) -> tuple[float, np.ndarray, np.ndarray, bool]:
        """``(t_s, pose, velocity, protective_stopped)`` read atomically."""
        with self._lock:
            self._advance()
            return self._t, self._pose.copy(), self._velocity.copy(), self._stopped_reason is not None

    # -- integration -----------------------------------------------------------------------------

    def _clamp_speed(self, speed: float) -> float:
        return min(max(float(speed), 1e-9), self.max_speed_m_s)

    def _clamp_accel(self, accel: float) -> float:
        return min(max(float(accel), 1e-9), self.max_accel_m_s2)

    def _take_over_from_move(self) -> None:
        """Turn a running linear move into a velocity state at its present velocity."""
        if self._move is not None:
            self._move = None
            self._speed_target = self._velocity.copy()
            self._speed_accel = self.max_accel_m_s2

    def _latch_stop(self, reason: str) -> None:
        self._velocity = np.zeros(6)
        self._move = None
        self._speed_target = None
        self._watchdog_period_s = 0.0
        if self._stopped_reason is None:
            self._stopped_reason = reason
            self._stopped_at = self._t

    def _advance(self) -> None:
        now = self._clock.now()
        while True:
            deadline = self._last_kick + self._watchdog_period_s if self._watchdog_period_s > 0 else np.inf
            if self._t >= deadline:
                self._latch_stop("watchdog: no RTDE input update within the watchdog period")
                continue
            if self._t >= now:
                break
            t_next = min(now, deadline)
            if self._move is None and self._speed_target is None:
                self._t = t_next
            else:
                self._step_to(min(t_next, self._t + _SUBSTEP_S))

    def _state_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Pose and velocity at ``t`` (within one sub-step of ``self._t``) without committing."""
        dt = t - self._t
        if self._move is not None:
            return self._move.state(t)
        assert self._speed_target is not None
        target = self._speed_target if t <= self._speed_until else np.zeros(6)
        change = target - self._velocity
        norm = float(np.linalg.norm(change[:3]))
        reach = self._speed_accel * dt
        if norm > reach:
            velocity = self._velocity + change * (reach / norm)
            return self._pose + 0.5 * (self._velocity + velocity) * dt, velocity
        # The ramp ends inside this sub-step: constant acceleration until then, constant velocity after.
        t_ramp = norm / self._speed_accel if norm > 0 else 0.0
        pose = self._pose + 0.5 * (self._velocity + target) * t_ramp + target * (dt - t_ramp)
        return pose, target.copy()

    def _step_to(self, t_next: float) -> None:
        pose, velocity = self._state_at(t_next)
        force = self._contact(pose)
        if force > self.force_limit_n:
            # Moving away from an over-limit contact (after unlocking) is allowed; pressing further is not.
            force_now = self._contact(self._pose)
            if force_now > self.force_limit_n and force <= force_now:
                self._commit(pose, velocity, t_next)
                return
            lo, hi = self._t, t_next
            if force_now <= self.force_limit_n:
                for _ in range(_BISECTION_STEPS):
                    mid = 0.5 * (lo + hi)
                    if self._contact(self._state_at(mid)[0]) > self.force_limit_n:
                        hi = mid
                    else:
                        lo = mid
                self._pose = self._state_at(hi)[0]
            else:
                hi = self._t
            self._t = hi
            force_stop = float(self._contact(self._pose))
            self._latch_stop(f"contact force {force_stop:.3f} N above the {self.force_limit_n:.3f} N limit")
            self._t = t_next
            return
        self._commit(pose, velocity, t_next)

    def _commit(self, pose: np.ndarray, velocity: np.ndarray, t_next: float) -> None:
        self._pose, self._velocity = pose, velocity
        self._t = t_next
        if self._move is not None:
            if self._move.finished(t_next):
                self._pose = self._move.target.copy()
                self._velocity = np.zeros(6)
                self._move = None
            return
        assert self._speed_target is not None
        winding_down = t_next >= self._speed_until or not self._speed_target.any()
        if winding_down and not np.any(np.abs(self._velocity) > _STILL_SPEED):
            self._velocity = np.zeros(6)
            self._speed_target = None
