"""One typed interface per device kind.

Flows talk to these, never to a socket. Each real driver (``ur_rtde``, ``pipython``, ``pyserial``,
the scanner bridge) implements one of them; the same driver talks to the lab's hardware or to the
digital twin, which serves the same wire protocol.

Units: robot poses are UR base-frame poses ``(x, y, z, rx, ry, rz)`` in metres and an axis-angle
rotation vector in radians; hexapod axes X, Y, Z in millimetres and U, V, W in degrees; forces in
newtons and torques in newton-millimetres.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class DeviceStatus:
    """One row of ``shearlab rig check``."""

    name: str
    identity: str
    state: str
    latency_ms: float


@dataclass(frozen=True)
class WrenchSample:
    """One force/torque record.

    ``seq`` counts records from the start of a stream (or of single reads), so a dropped record
    shows as a gap; ``t_s`` is the clock's virtual time when the record was received.
    """

    seq: int
    t_s: float
    force_n: np.ndarray
    torque_nmm: np.ndarray
    status: int = 0


@runtime_checkable
class Robot(Protocol):
    name: str

    def status(self) -> DeviceStatus: ...

    def tcp_pose(self) -> np.ndarray:
        """Actual TCP pose, shape (6,), metres and radians."""

    def move_linear(self, pose: np.ndarray, *, speed_m_s: float, accel_m_s2: float) -> None:
        """Blocking linear move to ``pose``; refused before any I/O outside the workspace box."""

    def speed_linear(self, velocity: np.ndarray, *, accel_m_s2: float) -> None:
        """Start a Cartesian velocity command, shape (6,), m/s and rad/s; returns at once."""

    def stop(self) -> None:
        """Decelerate any velocity command or move to rest."""

    def is_protective_stopped(self) -> bool: ...

    def set_watchdog(self, min_frequency_hz: float) -> None:
        """Arm the controller-side watchdog: if not kicked this often, the robot stops."""

    def kick_watchdog(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ForceSensor(Protocol):
    name: str

    def status(self) -> DeviceStatus: ...

    def configure(self, *, averaging: int = 1) -> None:
        """ASCII output, resolved force/torque, averaging over ``averaging`` raw samples."""

    def bias(self) -> None:
        """Zero the present load (``SB``)."""

    def unbias(self) -> None: ...

    def read(self) -> WrenchSample:
        """One record (``QR``)."""

    def stream(self, count: int) -> Iterator[WrenchSample]:
        """``count`` consecutive streamed records (``QS``); the stream is stopped afterwards."""

    def close(self) -> None: ...


@runtime_checkable
class Hexapod(Protocol):
    name: str

    def status(self) -> DeviceStatus: ...

    def reference(self) -> None:
        """Reference all axes (``FRF``) if they are not referenced yet, servo on first."""

    def is_referenced(self) -> bool: ...

    def set_servo(self, on: bool) -> None: ...

    def set_velocity(self, mm_s: float) -> None:
        """System velocity (``VLS``) in mm/s for the following moves."""

    def move_absolute(self, target: dict[str, float]) -> None:
        """Start a move to ``{axis: position}``; returns at once. Refused beyond travel limits."""

    def move_relative(self, delta: dict[str, float]) -> None: ...

    def position(self) -> dict[str, float]:
        """All six axes (``POS?``): X, Y, Z in mm, U, V, W in degrees."""

    def is_moving(self) -> bool: ...

    def wait_on_target(self, timeout_s: float) -> None:
        """Block until every axis is on target; ``DeviceTimeoutError`` after ``timeout_s`` virtual."""

    def halt(self) -> None:
        """Stop all axes at once (``HLT``); safe to call in any state."""

    def close(self) -> None: ...
