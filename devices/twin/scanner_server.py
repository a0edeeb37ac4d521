"""The scanner twin's bridge server: the scanner side of ``devices/scanner/WIRE.md``.

It keeps the scanner's state (loaded sequence, latched fault, push history for the duty-cycle limit)
and delegates image formation to ``acquire_fn``, supplied by the world: it images what lies under the
probe and may raise ``ScanRefused`` (e.g. no acoustic contact).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from shearlab.devices.clock import Clock
from shearlab.devices.interfaces import ScannerIdentity, ScanResult
from shearlab.devices.scanner.bridge_wire import (
    MAX_PAYLOAD_BYTES,
    MAX_REQUEST_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    REPLY_FOR,
    REQUEST_TYPES,
    BridgeProtocolError,
    ConfiguredReply,
    ConfigureRequest,
    ErrorCode,
    ErrorInfo,
    FireRequest,
    Frame,
    IdentityReply,
    MessageHeader,
    MessageType,
    PeerClosed,
    ScanRefused,
    ScanReply,
    StateReply,
    error_header,
    frame_buffers,
    recv_frame,
    send_frame,
)
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
# Once a frame's prefix has arrived the rest follows at link speed; a peer silent this long (virtual
# seconds) mid-frame has died, and the frame is dropped with the connection.
FRAME_TIMEOUT_S = 10.0
# A reply is a network transfer, wall time whatever the clock's speed: 43 MB take well under 1 s on any
# LAN, so a client that has not taken a reply in this long has stalled and is dropped.
_SEND_TIMEOUT_WALL_S = 30.0
# Shutdown joins are wall time on purpose: they bound how long close() can take, not an experiment step.
_JOIN_WALL_S = 2.0
_REQUEST_LOG_LENGTH = 1000
# After a framing error the peer's remaining input is drained (bounded) before closing; see _hang_up.
_DRAIN_S = 1.0
_DRAIN_MAX_BYTES = 1 << 20
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


class ScannerBridgeTwin:
    """Serves the scanner bridge protocol on ``host:port`` (0: any free port, read back from ``.port``).

    One daemon thread accepts, one per client serves; the scanner state is shared by all clients, as on
    the one real scanner. FIRE and CONFIGURE are serialised (one acquisition at a time); STATUS answers
    while a FIRE runs and then reports ``firing``.

    Every well-framed request is recorded in ``requests`` (type, header without ``arrays``), so tests
    can assert the exact conversation.
    """

    def __init__(
        self,
        host: str,
        port: int,
        acquire_fn: AcquireFn,
        clock: Clock,
        *,
        identity: ScannerIdentity = TWIN_IDENTITY,
        duty: DutyLimits = DutyLimits(),
        temperature_c: float | None = 25.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._acquire = acquire_fn
        self._clock = clock
        self.identity = identity
        self.duty = duty
        self._temperature_c = temperature_c
        self._lock = threading.Lock()
        self._fire_lock = threading.Lock()
        self._sequence: SequenceSpec | None = None
        self._sequence_id: str | None = None
        self._state = "idle"
        self._last_error: ErrorInfo | None = None
        self._pending_fault: str | None = None
        self._pushes: deque[tuple[float, float]] = deque()
        self._push_count = 0
        self._requests: deque[tuple[MessageType, dict[str, Any]]] = deque(maxlen=_REQUEST_LOG_LENGTH)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("scanner twin not started: call start() first")
        return int(self._listener.getsockname()[1])

    @property
    def requests(self) -> list[tuple[MessageType, dict[str, Any]]]:
        with self._lock:
            return list(self._requests)

    def start(self) -> None:
        """Bind and start accepting; idempotent."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self._requested_port))
            listener.listen(8)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"scanner-twin-accept:{self.port}", daemon=True)
        self._accept_thread.start()

    def close(self) -> None:
        """Stop accepting, drop every client and wait for the threads; idempotent."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        _shutdown(listener)
        listener.close()
        self.drop_connection()
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_WALL_S)
        with self._lock:
            threads = list(self._connections.values())
        for thread in threads:
            thread.join(_JOIN_WALL_S)

    def __enter__(self) -> ScannerBridgeTwin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inject_fault(self, message: str) -> None:
        """The next FIRE answers HARDWARE_FAULT with ``message``; the fault latches until CONFIGURE."""
        with self._lock:
            self._pending_fault = message

    def drop_connection(self) -> None:
        """Cut every client connection, as a pulled cable would; the server keeps listening."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), name="scanner-twin-client", daemon=True)
            with self._lock:
                self._connections[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    frame = recv_frame(
                        conn,
                        allowed=REQUEST_TYPES,
                        max_payload_bytes=MAX_REQUEST_PAYLOAD_BYTES,
                        first_timeout_wall_s=None,
                        timeout_wall_s=self._clock.io_timeout(FRAME_TIMEOUT_S),
                    )
                except PeerClosed:
                    return
                except BridgeProtocolError as exc:
                    self._send_error(conn, exc.request_id, ScanRefused(exc.code, exc.message))
                    if exc.framing_lost:
                        self._hang_up(conn)
                        return
                    continue
                except TimeoutError:
                    self._send_error(
                        conn, 0, ScanRefused(ErrorCode.BAD_MESSAGE, f"frame incomplete after {FRAME_TIMEOUT_S} s: connection closed")
                    )
                    self._hang_up(conn)
                    return
                with self._lock:
                    self._requests.append((frame.type, frame.header.model_dump(exclude={"arrays"})))
                try:
                    header, arrays = self._dispatch(frame)
                except ScanRefused as refusal:
                    self._send_error(conn, frame.request_id, refusal)
                    continue
                try:
                    buffers = frame_buffers(REPLY_FOR[frame.type], frame.request_id, header, arrays)
                except ValueError as exc:
                    self._send_error(conn, frame.request_id, ScanRefused(ErrorCode.HARDWARE_FAULT, f"reply cannot be encoded: {exc}"))
                    continue
                conn.settimeout(_SEND_TIMEOUT_WALL_S)
                for buffer in buffers:
                    conn.sendall(buffer)
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            conn.close()

    def _hang_up(self, conn: socket.socket) -> None:
        """Close after an ERROR without losing it: closing with unread input would send a TCP reset,
        which can discard the ERROR before the peer reads it; so stop writing, drain, then close."""
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(self._clock.io_timeout(_DRAIN_S))
            drained = 0
            while drained < _DRAIN_MAX_BYTES:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                drained += len(chunk)
        except OSError:
            return

    def _send_error(self, conn: socket.socket, request_id: int, refusal: ScanRefused) -> None:
        with self._lock:
            self._last_error = ErrorInfo(code=int(refusal.code), name=refusal.code.name, message=refusal.message)
        try:
            send_frame(
                conn, MessageType.ERROR, request_id, error_header(refusal.code, refusal.message, retry_after_s=refusal.retry_after_s)
            )
        except OSError:
            pass

    def _dispatch(self, frame: Frame) -> tuple[MessageHeader, dict[str, np.ndarray] | None]:
        if frame.type is MessageType.IDENTIFY:
            return self._identity(), None
        if frame.type is MessageType.STATUS:
            return self._state_reply(), None
        if frame.type is MessageType.CONFIGURE:
            assert isinstance(frame.header, ConfigureRequest)
            return self._configure(frame.header.sequence), None
        assert isinstance(frame.header, FireRequest)
        return self._fire(frame.header.sequence_id, frame.header.push)

    def _identity(self) -> IdentityReply:
        i = self.identity
        return IdentityReply(
            vendor=i.vendor,
            model=i.model,
            serial=i.serial,
            firmware=i.firmware,
            n_channels=i.n_channels,
            protocol_version=PROTOCOL_VERSION,
            max_payload_bytes=MAX_PAYLOAD_BYTES,
            min_push_interval_s=self.duty.min_push_interval_s,
            max_duty_cycle=self.duty.max_duty_cycle,
            duty_window_s=self.duty.window_s,
        )

    def _state_reply(self) -> StateReply:
        with self._lock:
            now = self._clock.now()
            duration = self._push_duration_s(self._sequence)
            return StateReply(
                state=self._state,
                sequence_id=self._sequence_id,
                last_error=self._last_error,
                temperature_c=self._temperature_c,
                duty_cycle=self._on_time_s(now) / self.duty.window_s,
                push_ready_in_s=self._push_wait_s(now, duration),
                pushes=self._push_count,
                clock_s=now,
            )

    def _configure(self, raw: dict[str, Any]) -> ConfiguredReply:
        try:
            sequence = SequenceSpec.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ScanRefused(ErrorCode.INVALID_SEQUENCE, f"sequence does not validate: {where}: {first['msg']}") from exc
        problem = self._infeasible(sequence)
        if problem:
            raise ScanRefused(ErrorCode.INVALID_SEQUENCE, problem)
        sequence_id = sequence_id_for(sequence)
        with self._fire_lock, self._lock:
            self._sequence, self._sequence_id = sequence, sequence_id
            self._state = "configured"
        im = sequence.imaging
        return ConfiguredReply(sequence_id=sequence_id, iq_shape=(1 + im.n_frames, im.n_depth, im.n_lateral))

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
            return f"one push of {push.duration_s(probe) * 1e3:.3f} ms exceeds the duty budget of {duty_budget_s * 1e3:.3f} ms per {self.duty.window_s} s"
        iq_bytes = (1 + im.n_frames) * im.n_depth * im.n_lateral * np.dtype(np.complex64).itemsize
        if iq_bytes + _GRID_ALLOWANCE_BYTES > MAX_PAYLOAD_BYTES:
            return f"IQ of {iq_bytes} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte message limit"
        return None

    def _fire(self, sequence_id: str, push: bool) -> tuple[ScanReply, dict[str, np.ndarray]]:
        with self._fire_lock:
            with self._lock:
                sequence = self._check_fire(sequence_id, push)
                previous_state, self._state = self._state, "firing"
            push_start_s = self._clock.now()
            try:
                result = self._acquire(sequence, push)
                reply, arrays = _scan_reply(sequence, replace(result, sequence_id=sequence_id))
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
        return reply, arrays

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
            now = self._clock.now()
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


def _scan_reply(sequence: SequenceSpec, result: ScanResult) -> tuple[ScanReply, dict[str, np.ndarray]]:
    im = sequence.imaging
    expected = {
        "iq": (1 + im.n_frames, im.n_depth, im.n_lateral),
        "frame_times_s": (1 + im.n_frames,),
        "depth_m": (im.n_depth,),
        "lateral_m": (im.n_lateral,),
    }
    arrays = {
        "iq": np.ascontiguousarray(result.iq, dtype="<c8"),
        "frame_times_s": np.ascontiguousarray(result.frame_times_s, dtype="<f8"),
        "depth_m": np.ascontiguousarray(result.depth_m, dtype="<f8"),
        "lateral_m": np.ascontiguousarray(result.lateral_m, dtype="<f8"),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"acquisition returned {name} of shape {arrays[name].shape}, the sequence needs {shape}")
    reply = ScanReply(
        sequence_id=result.sequence_id,
        pushed=bool(result.pushed),
        push_start_s=float(result.push_start_s),
        push_duration_s=float(result.push_duration_s),
        push_voltage_v=float(result.push_voltage_v),
        metadata=result.metadata,
    )
    try:
        reply.model_dump_json()
    except PydanticSerializationError as exc:
        raise ValueError(f"acquisition metadata is not JSON-serialisable: {exc}") from exc
    return reply, arrays


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


__all__ = ["TWIN_IDENTITY", "AcquireFn", "DutyLimits", "ScannerBridgeTwin", "scan_result_for", "sequence_id_for"]
