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
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

import numpy as np

from shearlab.protocols.sequences import SequenceSpec

# The rig's name for each device: rig-file tables, endpoints, locks, faults and errors all use these.
DeviceName = Literal["robot", "hexapod", "probe_ft", "indenter_ft", "scanner"]
DEVICE_NAMES: tuple[DeviceName, ...] = get_args(DeviceName)


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


class Robot(Protocol):
    name: str

    def status(self) -> DeviceStatus: ...

    def tcp_pose(self) -> np.ndarray:
        """Actual TCP pose, shape (6,), metres and radians."""

    def tcp_force(self) -> np.ndarray:
        """The controller's TCP wrench, shape (6,): N and N m. A CB3 estimates it from joint currents
        (tens of newtons of error): a sign of a collision, not a contact-force measurement."""

    def move_linear(self, pose: np.ndarray, *, speed_m_s: float, accel_m_s2: float) -> None:
        """Blocking linear move to ``pose``; refused before any I/O outside the workspace box."""

    def speed_linear(self, velocity: np.ndarray, *, accel_m_s2: float) -> None:
        """Start a Cartesian velocity command, shape (6,), m/s and rad/s; returns at once."""

    def stop(self) -> None:
        """Decelerate any velocity command or move to rest."""

    def is_protective_stopped(self) -> bool: ...

    def unlock_protective_stop(self) -> None:
        """Release a protective stop (after a person has checked why it happened)."""

    def set_watchdog(self, min_frequency_hz: float) -> None:
        """Arm the controller-side watchdog: if not kicked this often, the robot stops."""

    def kick_watchdog(self) -> None: ...

    def close(self) -> None: ...


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



@dataclass(frozen=True)
class ScannerIdentity:
    """What a scanner says it is (IDENTIFY)."""

    vendor: str
    model: str
    serial: str
    firmware: str
    n_channels: int
    protocol_version: int

    def __str__(self) -> str:
        return f"{self.vendor} {self.model} SN {self.serial} fw {self.firmware}"


ScannerStateName = Literal["idle", "configured", "firing", "fault"]


@dataclass(frozen=True)
class ScannerState:
    """The scanner's own account of itself (STATUS).

    ``state`` is ``idle``, ``configured``, ``firing`` or ``fault``; ``push_ready_in_s`` is the virtual
    time until the duty-cycle limit accepts another push; ``duty_cycle`` is the push on-time fraction over
    the scanner's duty window; ``temperature_c`` is ``None`` where the scanner reports none.
    """

    state: ScannerStateName
    sequence_id: str | None
    last_error: str | None
    last_error_code: int | None
    temperature_c: float | None
    duty_cycle: float
    push_ready_in_s: float
    pushes: int


@dataclass(frozen=True)
class ScanResult:
    """One fired sequence: beamformed IQ and its timing.

    Attributes
    ----------
    iq
        Complex64, shape ``(1 + frames, depth, lateral)``; frame 0 is the pre-push reference.
    frame_times_s
        Float64, shape ``(1 + frames,)``: acquisition time of each frame, seconds relative to the push
        start (frame 0 is negative).
    depth_m, lateral_m
        Float64 pixel-centre coordinates, shapes ``(depth,)`` and ``(lateral,)``, metres from the probe
        face and from the probe centre.
    push_start_s
        Scanner clock (virtual seconds) at the push start.
    push_duration_s, push_voltage_v
        What was transmitted; both 0 when the push was disabled (``pushed`` false).
    sequence_id
        The id CONFIGURE gave the sequence ("" until the scanner bridge fills it in).
    metadata
        Further JSON-serialisable facts the scanner reports.
    """

    iq: np.ndarray
    frame_times_s: np.ndarray
    depth_m: np.ndarray
    lateral_m: np.ndarray
    push_start_s: float
    push_duration_s: float
    push_voltage_v: float
    pushed: bool
    sequence_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


class Scanner(Protocol):
    name: str

    def status(self) -> DeviceStatus: ...

    def identify(self) -> ScannerIdentity: ...

    def read_state(self) -> ScannerState: ...

    def configure(self, sequence: SequenceSpec) -> str:
        """Load a push/imaging sequence; returns its sequence id. Also clears a latched fault."""

    def fire(self, *, push: bool = True) -> ScanResult:
        """Fire the configured sequence (the push only if ``push``) and return its IQ frames."""

    def close(self) -> None: ...
