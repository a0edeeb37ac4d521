"""Motion model of the PI H-820 hexapod behind its C-887 controller, for the digital twin.

Six axes: X, Y, Z in millimetres and U, V, W in degrees. The model holds what the controller
holds (servo and reference flags, system velocity, commanded targets, the error register) and
moves the platform along a straight line in 6-D at the system velocity, all axes arriving
together. State is advanced lazily from the twin's virtual clock whenever anyone looks at it, so
no thread ticks in the background; every public method is thread-safe.

Commands that the controller refuses raise ``CommandRefused`` with a GCS error code; the GCS
server stores that code in the error register, which ``ERR?`` reads and clears.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import IntEnum

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.hexapod.limits import AXES, LINEAR_AXES

_LINEAR = np.array([axis in LINEAR_AXES for axis in AXES])
# An axis is on target within 1 nm (or 1 micro-degree): the twin's positions are exact, so this
# only absorbs floating-point rounding of the interpolation.
ON_TARGET_TOLERANCE = 1e-6
# Bisection steps that locate where a motion guard first refuses a position; 40 halvings of a
# path of at most 100 mm leave an error below 0.1 nm.
_GUARD_BISECTIONS = 40


class GcsErrorCode(IntEnum):
    """GCS 2.0 error codes the twin raises (PI's GCS manual numbering)."""

    NO_ERROR = 0
    PARAM_SYNTAX = 1
    UNKNOWN_COMMAND = 2
    MOVE_WITHOUT_REF_OR_NO_SERVO = 5
    POS_OUT_OF_LIMITS = 7
    STOPPED = 10
    INVALID_AXIS = 15
    PARAM_OUT_OF_RANGE = 17


class CommandRefused(Exception):
    """The controller refuses a command; ``code`` goes to the error register."""

    def __init__(self, code: GcsErrorCode, message: str = "") -> None:
        super().__init__(f"GCS error {int(code)}: {message or code.name}")
        self.code = code


MotionGuard = Callable[[dict[str, float]], bool]


class HexapodModel:
    """Controller state and platform motion of a hexapod.

    Parameters
    ----------
    clock
        The twin's clock; motion advances with ``clock.now()`` (virtual seconds).
    travel_mm
        Soft limit of X, Y, Z: targets must lie in ``[-travel_mm, travel_mm]``.
    travel_deg
        Soft limit of U, V, W in degrees.
    max_velocity_mm_s
        Highest system velocity ``VLS`` accepts; also the velocity after power-up.
    reference_duration_s
        Virtual seconds that ``FRF`` takes; the platform ends at the origin of every axis.

    Notes
    -----
    The system velocity applies to the path of the platform centre: a move lasts
    ``max(|d_xyz| / v, |d_uvw| / v)`` with ``v`` read as mm/s for the translation and deg/s for the
    rotation, and every axis follows the same fraction of its way, so the path is a straight line
    in 6-D and all axes arrive together.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        travel_mm: float = 50.0,
        travel_deg: float = 10.0,
        max_velocity_mm_s: float = 10.0,
        reference_duration_s: float = 5.0,
    ) -> None:
        if not (travel_mm > 0 and travel_deg > 0 and max_velocity_mm_s > 0 and reference_duration_s >= 0):
            raise ValueError("travel, velocity and reference duration must be positive")
        self._clock = clock
        self._lock = threading.RLock()
        self._travel = np.where(_LINEAR, travel_mm, travel_deg)
        self.max_velocity_mm_s = float(max_velocity_mm_s)
        self._reference_duration_s = float(reference_duration_s)
        self._velocity = float(max_velocity_mm_s)
        self._servo = np.zeros(len(AXES), dtype=bool)
        self._referenced = False
        self._referencing_until: float | None = None
        self._position = np.zeros(len(AXES))
        self._target = np.zeros(len(AXES))
        # Active trajectory: start point, start time, duration; None when idle.
        self._start = np.zeros(len(AXES))
        self._t_start = 0.0
        self._duration: float | None = None
        self._fraction_done = 0.0
        self._stalled: set[int] = set()
        self._guard: MotionGuard | None = None
        self._error = GcsErrorCode.NO_ERROR.value

    # -- the world's view ---------------------------------------------------------------------
    def position_mm(self) -> dict[str, float]:
        """Present position of every axis: X, Y, Z in mm, U, V, W in degrees."""
        with self._lock:
            self._advance()
            return _as_dict(self._position)

    def set_motion_guard(self, guard: MotionGuard | None) -> None:
        """Install the rig's hard limit: motion halts at the first position ``guard`` refuses.

        ``guard`` receives ``{axis: position}`` and returns False where the platform must not go.
        A halt by the guard sets error 10, as a stop command would. The guard is checked at every
        state update and the first refused point found by bisection, which assumes the refused
        region is not crossed entirely between two updates.
        """
        with self._lock:
            self._advance()
            self._guard = guard

    # -- fault injection ----------------------------------------------------------------------
    def inject_error(self, code: int) -> None:
        """The next ``ERR?`` returns ``code``."""
        with self._lock:
            self._error = int(code)

    def stall_axis(self, axis: str) -> None:
        """``axis`` stops moving although commanded: it never reaches its target again."""
        if axis not in AXES:
            raise ValueError(f"no axis {axis!r}; the hexapod has {' '.join(AXES)}")
        index = AXES.index(axis)
        with self._lock:
            self._advance()
            self._stalled.add(index)

    # -- error register -----------------------------------------------------------------------
    def set_error(self, code: int) -> None:
        """Store the code of a refused command (the last error wins, as on the controller)."""
        with self._lock:
            self._error = int(code)

    def take_error(self) -> int:
        """``ERR?``: the stored error code, which reading clears."""
        with self._lock:
            code, self._error = self._error, GcsErrorCode.NO_ERROR.value
            return code

    # -- queries ------------------------------------------------------------------------------
    def targets(self) -> dict[str, float]:
        """``MOV?``: commanded target of every axis."""
        with self._lock:
            self._advance()
            return _as_dict(self._target)

    def on_target(self) -> dict[str, bool]:
        """``ONT?``: axes that are at their target and not moving."""
        with self._lock:
            self._advance()
            moving = self._moving()
            close = np.abs(self._position - self._target) <= ON_TARGET_TOLERANCE
            return {axis: bool(close[i] and not moving[i]) for i, axis in enumerate(AXES)}

    def moving_mask(self) -> int:
        """``#5``: bit i set while axis ``AXES[i]`` moves (a stalled axis keeps trying)."""
        with self._lock:
            self._advance()
            return sum(1 << i for i, moving in enumerate(self._moving()) if moving)

    def is_ready(self) -> bool:
        """``#7``: False while referencing."""
        with self._lock:
            self._advance()
            return self._referencing_until is None

    def servo(self) -> dict[str, bool]:
        with self._lock:
            return {axis: bool(self._servo[i]) for i, axis in enumerate(AXES)}

    def referenced(self) -> dict[str, bool]:
        with self._lock:
            self._advance()
            return {axis: self._referenced for axis in AXES}

    def velocity_mm_s(self) -> float:
        with self._lock:
            return self._velocity

    def limits(self) -> tuple[dict[str, float], dict[str, float]]:
        """``TMN?`` and ``TMX?``: lowest and highest target of every axis."""
        return _as_dict(-self._travel), _as_dict(self._travel)

    # -- commands -----------------------------------------------------------------------------
    def set_servo(self, states: dict[str, bool]) -> None:
        """``SVO``: switching the servo off stops any motion where it is."""
        indices = {_axis_index(axis): bool(on) for axis, on in states.items()}
        with self._lock:
            self._advance()
            if not all(indices.values()):
                self._stop_here()
                self._referencing_until = None
            for i, on in indices.items():
                self._servo[i] = on

    def reference(self) -> None:
        """``FRF``: reference all axes; the platform travels to the origin."""
        with self._lock:
            self._advance()
            if not self._servo.all():
                raise CommandRefused(GcsErrorCode.MOVE_WITHOUT_REF_OR_NO_SERVO, "servo off")
            self._stop_here()
            self._referenced = False
            self._referencing_until = self._clock.now() + self._reference_duration_s

    def set_velocity(self, mm_s: float) -> None:
        """``VLS``: system velocity for the following moves."""
        if not 0 < mm_s <= self.max_velocity_mm_s:
            raise CommandRefused(
                GcsErrorCode.PARAM_OUT_OF_RANGE, f"velocity {mm_s} outside (0, {self.max_velocity_mm_s}]"
            )
        with self._lock:
            self._velocity = float(mm_s)

    def move_absolute(self, targets: dict[str, float]) -> None:
        """``MOV``: all targets are checked before any axis moves."""
        with self._lock:
            self._advance()
            goal = self._target.copy()
            for axis, value in targets.items():
                goal[_axis_index(axis)] = float(value)
            self._start_move(goal)

    def move_relative(self, deltas: dict[str, float]) -> None:
        """``MVR``: relative to the last commanded target."""
        with self._lock:
            self._advance()
            goal = self._target.copy()
            for axis, value in deltas.items():
                goal[_axis_index(axis)] += float(value)
            self._start_move(goal)

    def halt(self) -> None:
        """``HLT``/``STP``/``#24``: stop where the platform is and set error 10."""
        with self._lock:
            self._advance()
            self._stop_here()
            self._referencing_until = None
            self._error = GcsErrorCode.STOPPED.value

    # -- internals (lock held) ----------------------------------------------------------------
    def _start_move(self, goal: np.ndarray) -> None:
        if not (self._referenced and self._servo.all()):
            raise CommandRefused(GcsErrorCode.MOVE_WITHOUT_REF_OR_NO_SERVO, "not referenced or servo off")
        if not np.all(np.isfinite(goal)):
            raise CommandRefused(GcsErrorCode.PARAM_OUT_OF_RANGE, "target is not a number")
        if np.any(np.abs(goal) > self._travel + ON_TARGET_TOLERANCE):
            raise CommandRefused(GcsErrorCode.POS_OUT_OF_LIMITS, "target beyond travel")
        delta = goal - self._position
        duration = float(max(np.linalg.norm(delta[_LINEAR]), np.linalg.norm(delta[~_LINEAR]))) / self._velocity
        self._start = self._position.copy()
        self._target = goal
        self._t_start = self._clock.now()
        self._duration = duration
        self._fraction_done = 0.0

    def _stop_here(self) -> None:
        self._duration = None
        self._target = self._position.copy()

    def _moving(self) -> np.ndarray:
        moving = np.zeros(len(AXES), dtype=bool)
        if self._referencing_until is not None:
            moving[:] = True
        elif self._duration is not None:
            moving = np.abs(self._target - self._start) > ON_TARGET_TOLERANCE
        for i in self._stalled:
            moving[i] |= abs(self._position[i] - self._target[i]) > ON_TARGET_TOLERANCE
        return moving

    def _along(self, fraction: float) -> np.ndarray:
        point = self._start + fraction * (self._target - self._start) if fraction < 1 else self._target.copy()
        for i in self._stalled:
            point[i] = self._position[i]
        return point

    def _advance(self) -> None:
        now = self._clock.now()
        if self._referencing_until is not None and now >= self._referencing_until:
            self._referencing_until = None
            self._referenced = True
            self._position[:] = 0.0
            self._target[:] = 0.0
        if self._duration is None:
            return
        fraction = 1.0 if self._duration <= 0 else min(1.0, (now - self._t_start) / self._duration)
        point = self._along(fraction)
        if self._guard is not None and not self._guard(_as_dict(point)):
            self._position = self._along(self._last_allowed(self._guard, self._fraction_done, fraction))
            self._stop_here()
            self._error = GcsErrorCode.STOPPED.value
            return
        self._position = point
        self._fraction_done = fraction
        if fraction >= 1.0:
            self._duration = None

    def _last_allowed(self, guard: MotionGuard, allowed: float, refused: float) -> float:
        """Largest path fraction in ``[allowed, refused)`` that ``guard`` still accepts."""
        for _ in range(_GUARD_BISECTIONS):
            middle = 0.5 * (allowed + refused)
            if guard(_as_dict(self._along(middle))):
                allowed = middle
            else:
                refused = middle
        return allowed


def _axis_index(axis: str) -> int:
    try:
        return AXES.index(axis)
    except ValueError:
        raise CommandRefused(GcsErrorCode.INVALID_AXIS, f"no axis {axis!r}") from None


def _as_dict(values: Iterable[float]) -> dict[str, float]:
    return {axis: float(v) for axis, v in zip(AXES, values, strict=True)}
