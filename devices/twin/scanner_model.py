"""The scanner's own state, as the twin and the simulation share it: loaded sequence, latched fault,
push duty limits.

It delegates image formation to ``acquire_fn`` (the world's ``TwinScannerBackend.acquire``), which may
refuse a push (``ScanRefused``, e.g. no acoustic contact). Every refusal is a ``ScanRefused`` with the
bridge's error code: the bridge server sends it as ERROR, the simulated scanner raises it as the
``ScannerRefusedError`` the bridge client would.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic_core import PydanticSerializationError, to_json

from shearlab.devices.clock import Clock
from shearlab.devices.interfaces import ScannerIdentity, ScannerState, ScannerStateName, ScanResult
from shearlab.devices.scanner.bridge_wire import MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, ErrorCode, ScanRefused
from shearlab.protocols.sequences import SequenceSpec

_log = logging.getLogger(__name__)

AcquireFn = Callable[[SequenceSpec, bool], ScanResult]

TWIN_IDENTITY = ScannerIdentity(
    vendor="Cephasonics",
    model="Cicada 128 (digital twin)",
    serial="TWIN-0001",
    firmware="shearlab-twin-1",
    n_channels=128,
    protocol_version=PROTOCOL_VERSION,
)
# Grid arrays (times and coordinates) travel with the IQ; keep room for them under the payload limit.
_GRID_ALLOWANCE_BYTES = 1 << 20


@dataclass(frozen=True)
class DutyLimits:
    """Push duty limits, virtual seconds (ours: the paper gives none).

    A push heats the 11-element aperture; the scanner refuses a push sooner than
    ``min_push_interval_s`` after the previous one, or one that would take the push on-time over the
    last ``window_s`` above ``max_duty_cycle``. The paper's push (2000 cycles, 267 us) once a second is
    a duty of 2.7e-4; the 10000-cycle maximum (1.33 ms) once a second exceeds 1e-3 and is refused.
    """

    min_push_interval_s: float = 1.0
    max_duty_cycle: float = 1e-3
    window_s: float = 10.0


def scan_result_for(
    sequence: SequenceSpec,
    iq: np.ndarray,
    *,
    push_start_s: float,
    pushed: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> ScanResult:
    """A ``ScanResult`` for ``iq`` with the grid, frame times and push facts ``sequence`` defines.

    Parameters
    ----------
    iq
        Complex, shape ``(1 + n_frames, n_depth, n_lateral)``; frame 0 is the pre-push reference.
    push_start_s
        Scanner clock at the push start, virtual seconds.

    Frame times are ``ImageGrid.frame_times_s`` (relative to the push start); the reference frame is
    taken one frame period before the push.
    """
    grid = sequence.grid
    reference_s = -1.0 / sequence.imaging.frame_rate_hz
    return ScanResult(
        iq=np.asarray(iq, dtype=np.complex64),
        frame_times_s=np.concatenate([[reference_s], grid.frame_times_s]),
        depth_m=grid.depth_m,
        lateral_m=grid.lateral_m,
        push_start_s=float(push_start_s),
        push_duration_s=sequence.push.duration_s(sequence.probe) if pushed else 0.0,
        push_voltage_v=sequence.push.voltage_v if pushed else 0.0,
        pushed=pushed,
        metadata=dict(metadata or {}),
    )


def sequence_id_for(sequence: SequenceSpec) -> str:
    """A content id: configuring the same sequence twice gives the same id."""
    return hashlib.sha256(sequence.model_dump_json().encode("utf-8")).hexdigest()[:12]


class ScannerModel:
    """One scanner's state; thread-safe. FIRE and CONFIGURE are serialised (one acquisition at a time);
    ``state()`` answers while a FIRE runs and then reports ``firing``."""

    def __init__(
        self,
        acquire_fn: AcquireFn,
        clock: Clock,
        *,
        identity: ScannerIdentity = TWIN_IDENTITY,
        duty: DutyLimits = DutyLimits(),
        temperature_c: float | None = 25.0,
    ) -> None:
        self._acquire = acquire_fn
        self.clock = clock
        self.identity = identity
        self.duty = duty
        self._temperature_c = temperature_c
        self._lock = threading.Lock()
        self._fire_lock = threading.Lock()
        self._sequence: SequenceSpec | None = None
        self._sequence_id: str | None = None
        self._state: ScannerStateName = "idle"
        self._last_error: tuple[ErrorCode, str] | None = None
        self._pending_fault: str | None = None
        self._pushes: deque[tuple[float, float]] = deque()
        self._push_count = 0

    def inject_fault(self, message: str) -> None:
        """The next FIRE fails with HARDWARE_FAULT ``message``; the fault latches until CONFIGURE."""
        with self._lock:
            self._pending_fault = message

    def record_error(self, code: ErrorCode, message: str) -> None:
        """Remember the latest error answered (STATUS reports it), whatever request caused it."""
        with self._lock:
            self._last_error = (code, message)

    def state(self) -> ScannerState:
        with self._lock:
            now = self.clock.now()
            error = self._last_error
            return ScannerState(
                state=self._state,
                sequence_id=self._sequence_id,
                last_error=None if error is None else error[1],
                last_error_code=None if error is None else int(error[0]),
                temperature_c=self._temperature_c,
                duty_cycle=self._on_time_s(now) / self.duty.window_s,
                push_ready_in_s=self._push_wait_s(now, self._push_duration_s(self._sequence)),
                pushes=self._push_count,
            )

    def configure(self, sequence: SequenceSpec) -> str:
        """Load ``sequence`` (clears a latched fault); returns its id. ``ScanRefused`` if infeasible."""
        problem = self._infeasible(sequence)
        if problem:
            raise ScanRefused(ErrorCode.INVALID_SEQUENCE, problem)
        sequence_id = sequence_id_for(sequence)
        with self._fire_lock, self._lock:
            self._sequence, self._sequence_id = sequence, sequence_id
            self._state = "configured"
        return sequence_id

    def fire(self, sequence_id: str, push: bool) -> ScanResult:
        """Acquire the loaded sequence ``sequence_id``; ``ScanRefused`` for every refusal or failure."""
        with self._fire_lock:
            with self._lock:
                sequence = self._check_fire(sequence_id, push)
                previous_state, self._state = self._state, "firing"
            push_start_s = self.clock.now()
            try:
                result = replace(self._acquire(sequence, push), sequence_id=sequence_id)
                _check_result(sequence, result)
            except ScanRefused:
                with self._lock:
                    self._state = previous_state
                raise
            except Exception as exc:
                _log.exception("scanner twin acquisition failed")
                with self._lock:
                    self._state = "fault"
                raise ScanRefused(ErrorCode.HARDWARE_FAULT, f"acquisition failed: {exc}") from exc
            with self._lock:
                if result.pushed:
                    self._pushes.append((push_start_s, result.push_duration_s))
                    self._push_count += 1
                self._state = "configured"
        return result

    def _infeasible(self, sequence: SequenceSpec) -> str | None:
        probe, push, im = sequence.probe, sequence.push, sequence.imaging
        if probe.n_elements > self.identity.n_channels:
            return f"probe has {probe.n_elements} elements but the scanner has {self.identity.n_channels} channels"
        if push.n_elements > probe.n_elements:
            return f"push uses {push.n_elements} elements of a {probe.n_elements}-element probe"
        half_push_mm = push.n_elements * probe.pitch_mm / 2
        if abs(push.lateral_mm) + half_push_mm > probe.aperture_mm / 2 + 1e-9:
            return f"push at {push.lateral_mm} mm with {push.n_elements} elements leaves the {probe.aperture_mm:.2f} mm aperture"
        duty_budget_s = self.duty.max_duty_cycle * self.duty.window_s
        if push.duration_s(probe) > duty_budget_s:
            return (f"one push of {push.duration_s(probe) * 1e3:.3f} ms exceeds the duty budget of {duty_budget_s * 1e3:.3f} ms "
                    f"per {self.duty.window_s} s")
        iq_bytes = (1 + im.n_frames) * im.n_depth * im.n_lateral * np.dtype(np.complex64).itemsize
        if iq_bytes + _GRID_ALLOWANCE_BYTES > MAX_PAYLOAD_BYTES:
            return f"IQ of {iq_bytes} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte message limit"
        return None

    def _check_fire(self, sequence_id: str, push: bool) -> SequenceSpec:
        """Refusals that need no acquisition, in the order a scanner checks them; holds ``_lock``."""
        if self._sequence is None:
            raise ScanRefused(ErrorCode.NOT_CONFIGURED, "no sequence loaded: CONFIGURE first")
        if sequence_id != self._sequence_id:
            raise ScanRefused(
                ErrorCode.NOT_CONFIGURED, f"sequence {sequence_id} is not loaded (loaded: {self._sequence_id}): CONFIGURE it again"
            )
        if self._pending_fault is not None:
            message, self._pending_fault = self._pending_fault, None
            self._state = "fault"
            raise ScanRefused(ErrorCode.HARDWARE_FAULT, message)
        if self._state == "fault":
            raise ScanRefused(ErrorCode.HARDWARE_FAULT, "fault latched: CONFIGURE again to re-arm")
        if push:
            now = self.clock.now()
            wait_s = self._push_wait_s(now, self._push_duration_s(self._sequence))
            if wait_s > 0:
                raise ScanRefused(
                    ErrorCode.DUTY_LIMIT,
                    f"push refused by the duty-cycle limit (>= {self.duty.min_push_interval_s} s apart, "
                    f"duty <= {self.duty.max_duty_cycle} over {self.duty.window_s} s): retry in {wait_s:.3f} s",
                    retry_after_s=wait_s,
                )
        return self._sequence

    @staticmethod
    def _push_duration_s(sequence: SequenceSpec | None) -> float:
        return 0.0 if sequence is None else sequence.push.duration_s(sequence.probe)

    def _on_time_s(self, now: float) -> float:
        while self._pushes and self._pushes[0][0] <= now - self.duty.window_s:
            self._pushes.popleft()
        return sum(duration for _, duration in self._pushes)

    def _push_wait_s(self, now: float, duration_s: float) -> float:
        """Virtual seconds until a push of ``duration_s`` passes both duty limits; holds ``_lock``."""
        if not self._pushes:
            return 0.0
        wait_s = self._pushes[-1][0] + self.duty.min_push_interval_s - now
        budget_s = self.duty.max_duty_cycle * self.duty.window_s - duration_s
        on_time_s = self._on_time_s(now)
        for start_s, push_s in self._pushes:
            if on_time_s <= budget_s:
                break
            on_time_s -= push_s
            wait_s = max(wait_s, start_s + self.duty.window_s - now)
        return max(0.0, wait_s)


def _check_result(sequence: SequenceSpec, result: ScanResult) -> None:
    """What an acquisition returns must fit the sequence and be sendable: shapes and JSON metadata."""
    im = sequence.imaging
    expected = {
        "iq": (1 + im.n_frames, im.n_depth, im.n_lateral),
        "frame_times_s": (1 + im.n_frames,),
        "depth_m": (im.n_depth,),
        "lateral_m": (im.n_lateral,),
    }
    for name, shape in expected.items():
        actual = np.shape(getattr(result, name))
        if actual != shape:
            raise ValueError(f"acquisition returned {name} of shape {actual}, the sequence needs {shape}")
    try:
        to_json(result.metadata)
    except PydanticSerializationError as exc:
        raise ValueError(f"acquisition metadata is not JSON-serialisable: {exc}") from exc
