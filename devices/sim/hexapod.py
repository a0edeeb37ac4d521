"""The PI hexapod in process: the twin's ``HexapodModel`` behind the ``Hexapod`` interface.

As ``PIHexapod`` against the twin, minus the wire: the same limit checks before any command, one GCS
exchange of latency per call, and ``pipython``'s habit of asking ``ERR?`` after every command, so an
error the controller holds (a refused command, an injected fault) surfaces as ``GCSError`` at the next
call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shearlab.devices.errors import DeviceFaultError, DeviceTimeoutError
from shearlab.devices.hexapod.limits import AXES, check_travel, checked_axes, checked_velocity_mm_s
from shearlab.devices.hexapod.pi_gcs import POLL_INTERVAL_S, REFERENCE_TIMEOUT_S, GCSError
from shearlab.devices.interfaces import DeviceStatus
from shearlab.devices.sim.clock import SimClock
from shearlab.devices.twin.gcs_server import IDENTITY
from shearlab.devices.twin.hexapod_model import CommandRefused, GcsErrorCode, HexapodModel
from shearlab.protocols.rig import HexapodLimits

# One command and pipython's ERR? over TCP on the lab's network: about a millisecond.
EXCHANGE_S = 1e-3


class SimHexapod:
    """A ``Hexapod`` on ``model``."""

    def __init__(self, model: HexapodModel, clock: SimClock, *, limits: HexapodLimits, name: str = "hexapod") -> None:
        self.name = name
        self.limits = limits
        self._model = model
        self._clock = clock

    def status(self) -> DeviceStatus:
        with self._exchange("#7"):
            ready = self._model.is_ready()
        if not ready:
            state = "busy"
        elif not self.is_referenced():
            state = "not referenced"
        elif self.is_moving():
            state = "moving"
        else:
            state = "ready"
        return DeviceStatus(self.name, identity=IDENTITY, state=state, latency_ms=EXCHANGE_S * 1e3)

    def reference(self) -> None:
        """Servo on, then reference (``FRF``) unless already referenced; returns when done."""
        with self._exchange("SVO?"):
            servo = self._model.servo()
        if not all(servo.values()):
            self.set_servo(True)
        if self.is_referenced():
            return
        with self._exchange("FRF"):
            self._model.reference()
        deadline = self._clock.deadline(REFERENCE_TIMEOUT_S)
        while True:
            with self._exchange("#7"):
                if self._model.is_ready():
                    break
            if deadline.expired():
                raise DeviceTimeoutError(self.name, f"referencing not finished after {REFERENCE_TIMEOUT_S:g} s")
            self._clock.sleep(POLL_INTERVAL_S)
        if not self.is_referenced():
            raise DeviceFaultError(self.name, "referencing ended but the axes are not referenced")

    def is_referenced(self) -> bool:
        with self._exchange("FRF?"):
            return all(self._model.referenced().values())

    def set_servo(self, on: bool) -> None:
        with self._exchange("SVO"):
            self._model.set_servo(dict.fromkeys(AXES, bool(on)))

    def set_velocity(self, mm_s: float) -> None:
        velocity = checked_velocity_mm_s(self.name, self.limits, mm_s)
        with self._exchange("VLS"):
            self._model.set_velocity(velocity)

    def move_absolute(self, target: dict[str, float]) -> None:
        target = checked_axes(target)
        check_travel(self.name, self.limits, target)
        with self._exchange("MOV"):
            self._model.move_absolute(target)

    def move_relative(self, delta: dict[str, float]) -> None:
        delta = checked_axes(delta)
        with self._exchange("MOV?"):
            targets = self._model.targets()
        check_travel(self.name, self.limits, {axis: targets[axis] + step for axis, step in delta.items()})
        with self._exchange("MVR"):
            self._model.move_relative(delta)

    def position(self) -> dict[str, float]:
        with self._exchange("POS?"):
            return self._model.position_mm()

    def is_moving(self) -> bool:
        with self._exchange("#5"):
            return self._model.moving_mask() != 0

    def wait_on_target(self, timeout_s: float) -> None:
        deadline = self._clock.deadline(timeout_s)
        while True:
            with self._exchange("ONT?"):
                on_target = self._model.on_target()
            off = [axis for axis in AXES if not on_target[axis]]
            if not off:
                return
            if deadline.expired():
                where, goal = self._model.position_mm(), self._model.targets()
                detail = ", ".join(f"{a} at {where[a]:.4f}, target {goal[a]:.4f}" for a in off)
                raise DeviceTimeoutError(self.name, f"axes {' '.join(off)} not on target after {timeout_s:g} s ({detail})")
            self._clock.sleep(POLL_INTERVAL_S)

    def halt(self) -> None:
        """Stop all axes (``HLT``); the error 10 it leaves is expected and read away, as the driver does."""
        self._clock.sleep(EXCHANGE_S)
        self._model.halt()
        self._model.take_error()

    def close(self) -> None:
        """Nothing to close in process."""

    @contextmanager
    def _exchange(self, command: str) -> Iterator[None]:
        """One command and its ``ERR?``: a refusal, or an error the controller holds, raises ``GCSError``."""
        self._clock.sleep(EXCHANGE_S)
        try:
            yield
        except CommandRefused as refused:
            self._model.take_error()
            raise GCSError(self.name, int(refused.code), command) from refused
        code = self._model.take_error()
        if code != GcsErrorCode.NO_ERROR:
            raise GCSError(self.name, code, command)
