"""The scanner twin's bridge server: the scanner side of ``devices/scanner/WIRE.md``.

It frames and parses the bridge's messages; the scanner's state (loaded sequence, latched fault, push
duty limits) and its image formation live in a ``ScannerModel``, which the in-process simulation
shares.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from typing import Any

import numpy as np
from pydantic import ValidationError

from shearlab.devices.interfaces import ScanResult
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
from shearlab.devices.twin.guard import ConnectionSlots, CpuBudget, Offender
from shearlab.devices.twin.scanner_model import ScannerModel
from shearlab.protocols.sequences import SequenceSpec

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


class ScannerBridgeTwin:
    """Serves the scanner bridge protocol on ``host:port`` (0: any free port, read back from ``.port``).

    One daemon thread accepts, one per client serves (at most ``guard.MAX_CONNECTIONS``); the scanner
    (``scanner``) is shared by all clients, as the one real scanner is. A client's framing costs it CPU
    budget (``guard.CpuBudget``); a shot's image formation does not, the scanner's duty limits bound it.

    Every well-framed request is recorded in ``requests`` (type, header without ``arrays``), so tests
    can assert the exact conversation.
    """

    def __init__(self, host: str, port: int, scanner: ScannerModel) -> None:
        self.host = host
        self._requested_port = port
        self.scanner = scanner
        self._clock = scanner.clock
        self._lock = threading.Lock()
        self._requests: deque[tuple[MessageType, dict[str, Any]]] = deque(maxlen=_REQUEST_LOG_LENGTH)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._slots = ConnectionSlots()
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
            if not self._slots.take():
                conn.close()  # at the bound: the newcomer waits for a free slot
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), name="scanner-twin-client", daemon=True)
            with self._lock:
                self._connections[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        budget = CpuBudget()
        try:
            while not self._stopping.is_set():
                try:
                    with budget.metered():
                        frame = recv_frame(
                            conn,
                            allowed=REQUEST_TYPES,
                            max_payload_bytes=MAX_REQUEST_PAYLOAD_BYTES,
                            first_timeout_wall_s=None,
                            timeout_wall_s=self._clock.io_timeout(FRAME_TIMEOUT_S),
                        )
                except (PeerClosed, Offender):
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
            self._slots.give_back()

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
        self.scanner.record_error(refusal.code, refusal.message)
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
        i, duty = self.scanner.identity, self.scanner.duty
        return IdentityReply(
            vendor=i.vendor,
            model=i.model,
            serial=i.serial,
            firmware=i.firmware,
            n_channels=i.n_channels,
            protocol_version=PROTOCOL_VERSION,
            max_payload_bytes=MAX_PAYLOAD_BYTES,
            min_push_interval_s=duty.min_push_interval_s,
            max_duty_cycle=duty.max_duty_cycle,
            duty_window_s=duty.window_s,
        )

    def _state_reply(self) -> StateReply:
        state = self.scanner.state()
        error = None
        if state.last_error_code is not None:
            error = ErrorInfo(code=state.last_error_code, name=ErrorCode(state.last_error_code).name, message=state.last_error or "")
        return StateReply(
            state=state.state,
            sequence_id=state.sequence_id,
            last_error=error,
            temperature_c=state.temperature_c,
            duty_cycle=state.duty_cycle,
            push_ready_in_s=state.push_ready_in_s,
            pushes=state.pushes,
            clock_s=self._clock.now(),
        )

    def _configure(self, raw: dict[str, Any]) -> ConfiguredReply:
        try:
            sequence = SequenceSpec.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ScanRefused(ErrorCode.INVALID_SEQUENCE, f"sequence does not validate: {where}: {first['msg']}") from exc
        sequence_id = self.scanner.configure(sequence)
        im = sequence.imaging
        return ConfiguredReply(sequence_id=sequence_id, iq_shape=(1 + im.n_frames, im.n_depth, im.n_lateral))

    def _fire(self, sequence_id: str, push: bool) -> tuple[ScanReply, dict[str, np.ndarray]]:
        result = self.scanner.fire(sequence_id, push)
        return _scan_reply(result), _scan_arrays(result)


def _scan_arrays(result: ScanResult) -> dict[str, np.ndarray]:
    return {
        "iq": np.ascontiguousarray(result.iq, dtype="<c8"),
        "frame_times_s": np.ascontiguousarray(result.frame_times_s, dtype="<f8"),
        "depth_m": np.ascontiguousarray(result.depth_m, dtype="<f8"),
        "lateral_m": np.ascontiguousarray(result.lateral_m, dtype="<f8"),
    }


def _scan_reply(result: ScanResult) -> ScanReply:
    return ScanReply(
        sequence_id=result.sequence_id,
        pushed=bool(result.pushed),
        push_start_s=float(result.push_start_s),
        push_duration_s=float(result.push_duration_s),
        push_voltage_v=float(result.push_voltage_v),
        metadata=result.metadata,
    )


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


__all__ = ["ScannerBridgeTwin"]
