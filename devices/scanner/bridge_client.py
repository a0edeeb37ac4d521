"""Driver for the ultrasound scanner behind the shearlab scanner bridge (``WIRE.md``)."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.errors import (
    DeviceConnectionError,
    DeviceProtocolError,
    DeviceRefusedError,
    DeviceTimeoutError,
)
from shearlab.devices.interfaces import DeviceStatus, ScannerIdentity, ScannerState, ScanResult
from shearlab.devices.scanner.bridge_wire import (
    MAX_PAYLOAD_BYTES,
    PROTOCOL_VERSION,
    REPLY_FOR,
    REPLY_TYPES,
    BridgeProtocolError,
    ConfiguredReply,
    ConfigureRequest,
    ErrorCode,
    ErrorReply,
    FireRequest,
    Frame,
    IdentifyRequest,
    IdentityReply,
    MessageHeader,
    MessageType,
    PeerClosed,
    ScanReply,
    StateReply,
    StatusRequest,
    recv_frame,
    send_frame,
)
from shearlab.protocols.sequences import SequenceSpec

# A FIRE reply waits for beamforming on the scanner PC, or for the twin's wave simulation: wall-clock
# work that does not speed up with a virtual clock, so its timeout never drops below this.
FIRE_MIN_WALL_S = 30.0
# Only the duty-cycle limit passes with time alone; every other refusal needs someone to act.
_TRANSIENT_CODES = frozenset({ErrorCode.DUTY_LIMIT})
_SCAN_ARRAYS = {"iq": ("<c8",), "frame_times_s": ("<f8", "<f4"), "depth_m": ("<f8", "<f4"), "lateral_m": ("<f8", "<f4")}


class ScannerRefusedError(DeviceRefusedError):
    """The scanner refused a request; ``code`` is the bridge's error code (``ErrorCode`` or a newer int).

    Only ``DUTY_LIMIT`` is transient: it passes after ``retry_after_s`` (0 when the bridge gave no hint).
    """

    def __init__(self, device: str, code: ErrorCode | int, message: str, *, retry_after_s: float | None = None) -> None:
        label = code.name if isinstance(code, ErrorCode) else f"code {code}"
        wait_s = (retry_after_s or 0.0) if code in _TRANSIENT_CODES else None
        super().__init__(device, f"{label}: {message}", retry_after_s=wait_s)
        self.code = code


class ScannerBridgeClient:
    """One scanner behind the bridge: TCP to ``host:port`` (the twin serves port 50200), ``TCP_NODELAY``.

    One request at a time per connection; each is answered by its reply or by ERROR:

    ==========  ==========  =============================================================
    request     reply       use
    ==========  ==========  =============================================================
    IDENTIFY    IDENTITY    on ``connect()`` (checks the protocol version) and ``identify()``
    CONFIGURE   CONFIGURED  ``configure(sequence)``: load a push/imaging sequence
    FIRE        SCAN        ``fire(push=...)``: IQ frames and timing of the loaded sequence
    STATUS      STATE       ``read_state()``, ``status()``
    ==========  ==========  =============================================================

    Timeouts are virtual seconds through ``clock``: ``timeout_s`` for every exchange and for each
    ``recv`` of a transfer, ``fire_timeout_s`` for the first byte of a SCAN (never under
    ``FIRE_MIN_WALL_S`` wall). After a lost link, a timeout or a garbled reply the connection is dropped
    and the next call reconnects; the loaded sequence survives (it lives on the scanner).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        clock: Clock,
        name: str = "scanner",
        timeout_s: float = 5.0,
        fire_timeout_s: float = 10.0,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"{name}: port must be in 1..65535, got {port}")
        if timeout_s <= 0 or fire_timeout_s <= 0:
            raise ValueError(f"{name}: timeouts must be > 0 s, got {timeout_s} and {fire_timeout_s}")
        self.name = name
        self.host = host
        self.port = port
        self._clock = clock
        self._timeout_s = timeout_s
        self._fire_timeout_s = fire_timeout_s
        self._sock: socket.socket | None = None
        self._wanted = False
        self._lock = threading.RLock()
        self._request_id = 0
        self._identity: ScannerIdentity | None = None
        self._max_payload_bytes = MAX_PAYLOAD_BYTES
        self._sequence: SequenceSpec | None = None
        self._sequence_id: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sequence_id(self) -> str | None:
        """Id of the sequence this client loaded, ``None`` before ``configure()``."""
        return self._sequence_id

    def connect(self) -> None:
        """Open the link and IDENTIFY; idempotent. ``DeviceConnectionError`` if unreachable or incompatible."""
        with self._lock:
            self._wanted = True
            if self._sock is None:
                try:
                    self._open()
                except Exception:
                    self._wanted = False
                    raise

    def close(self) -> None:
        """Close the link; idempotent. The scanner keeps its loaded sequence."""
        with self._lock:
            self._wanted = False
            self._drop()

    def __enter__(self) -> ScannerBridgeClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def identify(self) -> ScannerIdentity:
        frame = self._exchange(MessageType.IDENTIFY, IdentifyRequest())
        return self._accept_identity(frame.header)

    def read_state(self) -> ScannerState:
        header = self._exchange(MessageType.STATUS, StatusRequest()).header
        assert isinstance(header, StateReply)
        error = header.last_error
        return ScannerState(
            state=header.state,
            sequence_id=header.sequence_id,
            last_error=None if error is None else f"{error.name}: {error.message}",
            last_error_code=None if error is None else error.code,
            temperature_c=header.temperature_c,
            duty_cycle=header.duty_cycle,
            push_ready_in_s=header.push_ready_in_s,
            pushes=header.pushes,
        )

    def status(self) -> DeviceStatus:
        started = time.perf_counter()
        state = self.read_state()
        latency_ms = (time.perf_counter() - started) * 1e3
        label = f"fault ({state.last_error})" if state.state == "fault" else state.state
        return DeviceStatus(name=self.name, identity=str(self._identity), state=label, latency_ms=latency_ms)

    def configure(self, sequence: SequenceSpec) -> str:
        """Load ``sequence``; returns its id (the same sequence always gets the same id).

        Also re-arms a scanner with a latched fault. Refused before any I/O if the sequence cannot fit
        this scanner; ``ScannerRefusedError`` (``INVALID_SEQUENCE``) if the scanner rejects it.
        """
        if not isinstance(sequence, SequenceSpec):
            raise TypeError(f"{self.name}: configure() takes a SequenceSpec, got {type(sequence).__name__}")
        with self._lock:
            self._require_link()
            iq_shape = _iq_shape(sequence)
            iq_bytes = int(np.prod(iq_shape)) * np.dtype(np.complex64).itemsize
            if iq_bytes > self._max_payload_bytes:
                raise ValueError(
                    f"{self.name}: the sequence's IQ is {iq_bytes} bytes, over the scanner's {self._max_payload_bytes}-byte "
                    "message limit: use fewer frames or pixels"
                )
            if self._identity is not None and sequence.probe.n_elements > self._identity.n_channels:
                raise ValueError(
                    f"{self.name}: probe has {sequence.probe.n_elements} elements, the scanner {self._identity.n_channels} channels"
                )
            frame = self._exchange(MessageType.CONFIGURE, ConfigureRequest(sequence=sequence.model_dump(mode="json")))
            header = frame.header
            assert isinstance(header, ConfiguredReply)
            if tuple(header.iq_shape) != iq_shape:
                self._drop()
                raise DeviceProtocolError(self.name, f"CONFIGURED announces IQ shape {header.iq_shape}, the sequence needs {iq_shape}")
            self._sequence, self._sequence_id = sequence, header.sequence_id
            return header.sequence_id

    def fire(self, *, push: bool = True, wait_duty_s: float = 0.0) -> ScanResult:
        """Fire the loaded sequence and return its IQ frames.

        Parameters
        ----------
        push
            Transmit the push; ``False`` images without pushing (no duty-cycle cost).
        wait_duty_s
            Virtual seconds this call may wait, then retry, when the duty-cycle limit refuses the push.

        Returns
        -------
        ScanResult
            ``iq`` complex64 ``(1 + n_frames, n_depth, n_lateral)``, frame 0 the pre-push reference.

        Raises
        ------
        ScannerRefusedError
            ``NOT_CONFIGURED`` before any I/O if ``configure()`` was never called; otherwise the
            scanner's refusal (``NO_CONTACT``, ``DUTY_LIMIT``, ``HARDWARE_FAULT``...).
        """
        if not isinstance(push, bool):
            raise TypeError(f"{self.name}: push must be True or False, got {push!r}")
        if wait_duty_s < 0:
            raise ValueError(f"{self.name}: wait_duty_s must be >= 0, got {wait_duty_s}")
        with self._lock:
            if self._sequence_id is None or self._sequence is None:
                raise ScannerRefusedError(
                    self.name, ErrorCode.NOT_CONFIGURED, "no sequence loaded: call configure(sequence) before fire() (nothing was sent)"
                )
            self._require_link()
            deadline = self._clock.deadline(wait_duty_s)
            request = FireRequest(sequence_id=self._sequence_id, push=push)
            first_byte_wall_s = max(self._clock.io_timeout(self._fire_timeout_s), FIRE_MIN_WALL_S)
            while True:
                try:
                    frame = self._exchange(MessageType.FIRE, request, first_byte_wall_s=first_byte_wall_s)
                    break
                except ScannerRefusedError as exc:
                    retry_s = exc.retry_after_s
                    if exc.code is not ErrorCode.DUTY_LIMIT or retry_s is None or retry_s > deadline.remaining():
                        raise
                    self._clock.sleep(retry_s)
            return self._scan_result(frame, self._sequence)

    def _require_link(self) -> None:
        if not self._wanted:
            raise DeviceConnectionError(self.name, f"not connected to the scanner bridge at {self.address}: call connect() first")

    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._clock.io_timeout(self._timeout_s))
        except OSError as exc:
            raise DeviceConnectionError(self.name, f"cannot reach the scanner bridge at {self.address}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        frame = self._exchange(MessageType.IDENTIFY, IdentifyRequest())
        header = frame.header
        assert isinstance(header, IdentityReply)
        if header.protocol_version != PROTOCOL_VERSION:
            self._drop()
            raise DeviceConnectionError(
                self.name, f"scanner bridge at {self.address} speaks protocol {header.protocol_version}, this client {PROTOCOL_VERSION}"
            )
        self._accept_identity(header)

    def _accept_identity(self, header: MessageHeader) -> ScannerIdentity:
        assert isinstance(header, IdentityReply)
        self._max_payload_bytes = header.max_payload_bytes
        self._identity = ScannerIdentity(
            vendor=header.vendor,
            model=header.model,
            serial=header.serial,
            firmware=header.firmware,
            n_channels=header.n_channels,
            protocol_version=header.protocol_version,
        )
        return self._identity

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _exchange(self, msg_type: MessageType, header: MessageHeader, *, first_byte_wall_s: float | None = None) -> Frame:
        """Send one request and return its reply; ERROR replies become typed errors."""
        with self._lock:
            self._require_link()
            if self._sock is None:
                self._open()
            sock = self._sock
            assert sock is not None
            self._request_id = (self._request_id + 1) % (1 << 32)
            request_id = self._request_id
            io_wall_s = self._clock.io_timeout(self._timeout_s)
            what = f"{msg_type.name} to {self.address}"
            try:
                sock.settimeout(io_wall_s)
                send_frame(sock, msg_type, request_id, header)
                frame = recv_frame(
                    sock, allowed=REPLY_TYPES, first_timeout_wall_s=first_byte_wall_s or io_wall_s, timeout_wall_s=io_wall_s
                )
            except TimeoutError as exc:
                self._drop()
                raise DeviceTimeoutError(self.name, f"no complete reply to {what} in time ({exc or 'timed out'})") from exc
            except PeerClosed as exc:
                self._drop()
                raise DeviceConnectionError(self.name, f"scanner bridge closed the connection during {what}") from exc
            except BridgeProtocolError as exc:
                self._drop()
                raise DeviceProtocolError(self.name, f"garbled reply to {what}: {exc.message}") from exc
            except OSError as exc:
                self._drop()
                raise DeviceConnectionError(self.name, f"link lost during {what}: {exc}") from exc
            if frame.request_id != request_id:
                self._drop()
                raise DeviceProtocolError(self.name, f"reply to {what} carries request id {frame.request_id}, expected {request_id}")
            if frame.type is MessageType.ERROR:
                raise self._error_from(frame.header, what)
            if frame.type is not REPLY_FOR[msg_type]:
                self._drop()
                raise DeviceProtocolError(self.name, f"{what} answered with {frame.type.name}, expected {REPLY_FOR[msg_type].name}")
            return frame

    def _error_from(self, header: MessageHeader, what: str) -> Exception:
        assert isinstance(header, ErrorReply)
        try:
            code: ErrorCode | int = ErrorCode(header.code)
        except ValueError:
            code = header.code
        if code is ErrorCode.BAD_MESSAGE:
            self._drop()
            return DeviceProtocolError(self.name, f"scanner rejected {what} as malformed: {header.message}")
        if code is ErrorCode.UNSUPPORTED_VERSION:
            self._drop()
            return DeviceConnectionError(
                self.name,
                f"scanner bridge at {self.address} supports protocol versions {list(header.supported_versions)}, "
                f"this client speaks {PROTOCOL_VERSION}: {header.message}",
            )
        return ScannerRefusedError(self.name, code, header.message, retry_after_s=header.retry_after_s)

    def _scan_result(self, frame: Frame, sequence: SequenceSpec) -> ScanResult:
        header = frame.header
        assert isinstance(header, ScanReply)
        iq_shape = _iq_shape(sequence)
        expected = {"iq": iq_shape, "frame_times_s": iq_shape[:1], "depth_m": iq_shape[1:2], "lateral_m": iq_shape[2:]}
        problems = [
            f"{name}: {frame.arrays[name].dtype.str} {frame.arrays[name].shape}, expected {_SCAN_ARRAYS[name][0]} {shape}"
            for name, shape in expected.items()
            if name in frame.arrays
            and (frame.arrays[name].shape != shape or frame.arrays[name].dtype.str not in _SCAN_ARRAYS[name])
        ]
        if set(frame.arrays) != set(expected):
            problems.append(f"arrays {sorted(frame.arrays)}, expected {sorted(expected)}")
        if header.sequence_id != self._sequence_id:
            problems.append(f"sequence {header.sequence_id}, expected {self._sequence_id}")
        if problems:
            raise DeviceProtocolError(self.name, "SCAN does not match the loaded sequence: " + "; ".join(problems))
        return ScanResult(
            iq=frame.arrays["iq"],
            frame_times_s=frame.arrays["frame_times_s"].astype(np.float64, copy=False),
            depth_m=frame.arrays["depth_m"].astype(np.float64, copy=False),
            lateral_m=frame.arrays["lateral_m"].astype(np.float64, copy=False),
            push_start_s=header.push_start_s,
            push_duration_s=header.push_duration_s,
            push_voltage_v=header.push_voltage_v,
            pushed=header.pushed,
            sequence_id=header.sequence_id,
            metadata=dict(header.metadata),
        )


def _iq_shape(sequence: SequenceSpec) -> tuple[int, int, int]:
    im = sequence.imaging
    return (1 + im.n_frames, im.n_depth, im.n_lateral)


__all__ = ["FIRE_MIN_WALL_S", "ScannerBridgeClient", "ScannerRefusedError"]
