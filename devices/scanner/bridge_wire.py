"""The scanner bridge wire format: framing, header models and array blocks (``WIRE.md``).

A frame is a 24-byte big-endian prefix, a UTF-8 JSON header and zero or more raw array blocks::

    magic "SLSB" | version u16 | type u16 | request_id u32 | header_len u32 | payload_len u64
    header (header_len bytes of JSON) | payload (payload_len bytes: the arrays the header lists)

Arrays travel little-endian, C order, in the order the header lists them; IQ volumes are
``(frames, depth, lateral)``. Client and twin share this module, so the bytes the tests check are the
bytes a lab's C++ bridge must produce.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, NonNegativeInt, StrictBool, ValidationError, model_validator

from shearlab.protocols.strict_model import StrictModel

MAGIC = b"SLSB"
# The twin serves the bridge here; a lab's bridge may use any port (the rig file's scanner.port).
DEFAULT_PORT = 50200
PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
PREFIX = struct.Struct(">4sHHIIQ")
# A header is a few hundred bytes of JSON (a sequence with metadata); 64 KiB leaves room for metadata
# while refusing a garbage length before any allocation.
MAX_HEADER_BYTES = 64 * 1024
# The paper's sequence is 36 x 250 x 600 complex64 = 43.2 MB; 256 MiB allows ~6x more frames or pixels
# and still bounds what one garbled length field can make a peer allocate.
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
# Requests carry no arrays in version 1.
MAX_REQUEST_PAYLOAD_BYTES = 0
WIRE_DTYPES: dict[str, np.dtype] = {"<c8": np.dtype("<c8"), "<f4": np.dtype("<f4"), "<f8": np.dtype("<f8")}
_MAX_NDIM = 8
_DISCARD_CHUNK_BYTES = 1 << 20


class MessageType(IntEnum):
    """Requests have the high bit clear; each reply is its request | 0x80, or ERROR."""

    IDENTIFY = 0x01
    CONFIGURE = 0x02
    FIRE = 0x03
    STATUS = 0x04
    IDENTITY = 0x81
    CONFIGURED = 0x82
    SCAN = 0x83
    STATE = 0x84
    ERROR = 0xFF


REQUEST_TYPES = frozenset({MessageType.IDENTIFY, MessageType.CONFIGURE, MessageType.FIRE, MessageType.STATUS})
REPLY_TYPES = frozenset(set(MessageType) - REQUEST_TYPES)
REPLY_FOR: dict[MessageType, MessageType] = {
    MessageType.IDENTIFY: MessageType.IDENTITY,
    MessageType.CONFIGURE: MessageType.CONFIGURED,
    MessageType.FIRE: MessageType.SCAN,
    MessageType.STATUS: MessageType.STATE,
}


class ErrorCode(IntEnum):
    """Codes of an ERROR reply (``WIRE.md``, error table)."""

    BAD_MESSAGE = 1
    UNSUPPORTED_VERSION = 2
    NOT_CONFIGURED = 3
    INVALID_SEQUENCE = 4
    NO_CONTACT = 5
    DUTY_LIMIT = 6
    HARDWARE_FAULT = 7


class BridgeProtocolError(Exception):
    """Bytes that break the protocol.

    ``framing_lost`` is true when the stream can no longer be split into frames (bad magic, a
    length beyond the limits, a truncated frame, an unsupported version): the peer answers once and
    closes. Otherwise the frame was skipped whole and the connection stays usable.
    """

    def __init__(self, code: ErrorCode, message: str, *, framing_lost: bool, request_id: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.framing_lost = framing_lost
        self.request_id = request_id


class PeerClosed(Exception):
    """The peer closed the connection cleanly between frames."""


class ScanRefused(Exception):
    """Raised by an acquisition to refuse a FIRE; the server answers ERROR with this code."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class ArraySpec(StrictModel):
    """One array block: little-endian dtype, C-order shape and its byte length."""

    name: str = Field(min_length=1, max_length=64)
    dtype: Literal["<c8", "<f4", "<f8"]
    shape: tuple[NonNegativeInt, ...] = Field(max_length=_MAX_NDIM)
    nbytes: NonNegativeInt

    @model_validator(mode="after")
    def _consistent(self) -> ArraySpec:
        expected = int(np.prod(self.shape, dtype=np.int64)) * WIRE_DTYPES[self.dtype].itemsize
        if self.nbytes != expected:
            raise ValueError(f"array {self.name!r}: nbytes {self.nbytes} != shape {self.shape} x {self.dtype} = {expected}")
        return self


class MessageHeader(StrictModel):
    """Base of every message's JSON header: the message's fields plus the payload's array blocks."""

    arrays: tuple[ArraySpec, ...] = ()


class IdentifyRequest(MessageHeader):
    client: str = "shearlab"


class IdentityReply(MessageHeader):
    vendor: str
    model: str
    serial: str
    firmware: str
    n_channels: int = Field(gt=0)
    protocol_version: int
    max_payload_bytes: int = Field(gt=0)
    min_push_interval_s: float = Field(ge=0)
    max_duty_cycle: float = Field(gt=0, le=1)
    duty_window_s: float = Field(gt=0)


class ConfigureRequest(MessageHeader):
    # Kept as plain JSON here: a sequence that does not validate is INVALID_SEQUENCE, not BAD_MESSAGE.
    sequence: dict[str, Any]


class ConfiguredReply(MessageHeader):
    sequence_id: str = Field(min_length=1)
    iq_shape: tuple[int, int, int]


class FireRequest(MessageHeader):
    sequence_id: str = Field(min_length=1)
    push: StrictBool = True


class ScanReply(MessageHeader):
    sequence_id: str
    pushed: StrictBool
    push_start_s: float
    push_duration_s: float = Field(ge=0)
    push_voltage_v: float = Field(ge=0)
    metadata: dict[str, Any] = {}


class StatusRequest(MessageHeader):
    pass


class ErrorInfo(StrictModel):
    code: int
    name: str
    message: str


class StateReply(MessageHeader):
    state: Literal["idle", "configured", "firing", "fault"]
    sequence_id: str | None
    last_error: ErrorInfo | None
    temperature_c: float | None
    duty_cycle: float = Field(ge=0)
    push_ready_in_s: float = Field(ge=0)
    pushes: NonNegativeInt
    clock_s: float


class ErrorReply(MessageHeader):
    code: int
    name: str
    message: str
    retry_after_s: float | None = None
    supported_versions: tuple[int, ...] = SUPPORTED_VERSIONS


HEADER_MODELS: dict[MessageType, type[MessageHeader]] = {
    MessageType.IDENTIFY: IdentifyRequest,
    MessageType.CONFIGURE: ConfigureRequest,
    MessageType.FIRE: FireRequest,
    MessageType.STATUS: StatusRequest,
    MessageType.IDENTITY: IdentityReply,
    MessageType.CONFIGURED: ConfiguredReply,
    MessageType.SCAN: ScanReply,
    MessageType.STATE: StateReply,
    MessageType.ERROR: ErrorReply,
}


@dataclass(frozen=True)
class Frame:
    """One decoded message; ``arrays`` keeps the header's order."""

    type: MessageType
    request_id: int
    header: MessageHeader
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = PROTOCOL_VERSION


class _Reader(Protocol):
    def read_into(self, view: memoryview) -> int:
        """Fill as much of ``view`` as arrives; return the byte count, 0 at end of stream."""


def error_header(code: ErrorCode, message: str, *, retry_after_s: float | None = None) -> ErrorReply:
    return ErrorReply(code=int(code), name=code.name, message=message, retry_after_s=retry_after_s)


def frame_buffers(
    msg_type: MessageType,
    request_id: int,
    header: MessageHeader,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> list[memoryview | bytes]:
    """The buffers of one frame, in wire order, without copying the arrays.

    Parameters
    ----------
    arrays
        Name -> array; each must already have a wire dtype (``<c8``, ``<f4``, ``<f8``). Non-contiguous
        arrays are made C-contiguous (the only copy this function can make).
    """
    blocks: list[memoryview] = []
    specs: list[ArraySpec] = []
    for name, array in (arrays or {}).items():
        if array.dtype.str not in WIRE_DTYPES:
            raise ValueError(f"array {name!r} has dtype {array.dtype.str}; the wire carries only {sorted(WIRE_DTYPES)}")
        contiguous = np.asarray(array, order="C")
        specs.append(ArraySpec.model_validate({"name": name, "dtype": array.dtype.str, "shape": contiguous.shape,
                                               "nbytes": contiguous.nbytes}))
        blocks.append(_byte_view(contiguous))
    header_bytes = header.model_copy(update={"arrays": tuple(specs)}).model_dump_json().encode("utf-8")
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ValueError(f"{msg_type.name} header is {len(header_bytes)} bytes, over the {MAX_HEADER_BYTES}-byte limit")
    payload_len = sum(b.nbytes for b in blocks)
    if payload_len > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{msg_type.name} payload is {payload_len} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")
    prefix = PREFIX.pack(MAGIC, PROTOCOL_VERSION, int(msg_type), request_id, len(header_bytes), payload_len)
    return [prefix + header_bytes, *blocks]


def encode_frame(
    msg_type: MessageType,
    request_id: int,
    header: MessageHeader,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """One frame as a single ``bytes`` (copies; for tests and small messages)."""
    return b"".join(bytes(b) for b in frame_buffers(msg_type, request_id, header, arrays))


def send_frame(
    sock: socket.socket,
    msg_type: MessageType,
    request_id: int,
    header: MessageHeader,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Send one frame; array blocks go straight from their numpy buffers to the socket."""
    for buffer in frame_buffers(msg_type, request_id, header, arrays):
        sock.sendall(buffer)


class _SocketReader:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read_into(self, view: memoryview) -> int:
        return self._sock.recv_into(view)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read_into(self, view: memoryview) -> int:
        n = min(view.nbytes, self._view.nbytes - self._at)
        view[:n] = self._view[self._at : self._at + n]
        self._at += n
        return n

    @property
    def remaining(self) -> int:
        return self._view.nbytes - self._at


def _fill(reader: _Reader, view: memoryview, what: str, request_id: int) -> None:
    got = 0
    while got < view.nbytes:
        n = reader.read_into(view[got:])
        if n == 0:
            raise BridgeProtocolError(
                ErrorCode.BAD_MESSAGE,
                f"truncated frame: connection closed after {got} of {view.nbytes} bytes of the {what}",
                framing_lost=True,
                request_id=request_id,
            )
        got += n


def _discard(reader: _Reader, nbytes: int, request_id: int) -> None:
    scratch = memoryview(bytearray(min(nbytes, _DISCARD_CHUNK_BYTES)))
    left = nbytes
    while left:
        chunk = min(left, scratch.nbytes)
        _fill(reader, scratch[:chunk], "payload", request_id)
        left -= chunk


def _read_frame(
    reader: _Reader,
    *,
    allowed: frozenset[MessageType],
    max_payload_bytes: int,
    on_frame_start: Callable[[], None] | None = None,
) -> Frame:
    prefix = bytearray(PREFIX.size)
    view = memoryview(prefix)
    first = reader.read_into(view)
    if first == 0:
        raise PeerClosed("peer closed the connection")
    if on_frame_start is not None:
        on_frame_start()
    if first < PREFIX.size:
        _fill(reader, view[first:], "24-byte prefix", 0)
    magic, version, raw_type, request_id, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE, f"bad magic {bytes(magic)!r} (expected {MAGIC!r}): not a scanner bridge frame", framing_lost=True
        )
    if version not in SUPPORTED_VERSIONS:
        raise BridgeProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version} is not supported (supported: {list(SUPPORTED_VERSIONS)})",
            framing_lost=True,
            request_id=request_id,
        )
    if not 0 < header_len <= MAX_HEADER_BYTES:
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE, f"header length {header_len} outside 1..{MAX_HEADER_BYTES}", framing_lost=True, request_id=request_id
        )
    if payload_len > max_payload_bytes:
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE,
            f"payload length {payload_len} over the limit of {max_payload_bytes} bytes for this peer",
            framing_lost=True,
            request_id=request_id,
        )
    header_bytes = bytearray(header_len)
    _fill(reader, memoryview(header_bytes), "JSON header", request_id)
    try:
        msg_type = MessageType(raw_type)
    except ValueError:
        msg_type = None
    if msg_type is None or msg_type not in allowed:
        _discard(reader, payload_len, request_id)
        name = msg_type.name if msg_type is not None else f"0x{raw_type:02X}"
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE, f"unexpected message type {name} here", framing_lost=False, request_id=request_id
        )
    try:
        header = HEADER_MODELS[msg_type].model_validate_json(bytes(header_bytes))
    except ValidationError as exc:
        _discard(reader, payload_len, request_id)
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE, f"{msg_type.name} header invalid: {_short(exc)}", framing_lost=False, request_id=request_id
        ) from exc
    declared = sum(spec.nbytes for spec in header.arrays)
    names = [spec.name for spec in header.arrays]
    if declared != payload_len or len(set(names)) != len(names):
        _discard(reader, payload_len, request_id)
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE,
            f"{msg_type.name}: arrays {names} declare {declared} bytes but the payload is {payload_len} (names must be unique)",
            framing_lost=False,
            request_id=request_id,
        )
    arrays: dict[str, np.ndarray] = {}
    for spec in header.arrays:
        array = np.empty(spec.shape, dtype=WIRE_DTYPES[spec.dtype])
        if spec.nbytes:
            _fill(reader, _byte_view(array), f"array {spec.name!r}", request_id)
        arrays[spec.name] = array
    return Frame(type=msg_type, request_id=request_id, header=header, arrays=arrays, version=version)


def recv_frame(
    sock: socket.socket,
    *,
    allowed: frozenset[MessageType],
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    first_timeout_wall_s: float | None,
    timeout_wall_s: float | None,
) -> Frame:
    """Read one frame, each array received straight into a new numpy array.

    Parameters
    ----------
    allowed
        Message types this side accepts; any other is skipped whole and reported as BAD_MESSAGE.
    first_timeout_wall_s
        Wall seconds to wait for a frame's first bytes (``None``: forever, for a server waiting on an
        idle client).
    timeout_wall_s
        Wall seconds each later ``recv`` may wait once the frame has started.

    Raises
    ------
    PeerClosed
        Clean end of stream before a new frame.
    BridgeProtocolError
        Anything that is not a valid frame; ``framing_lost`` says whether the stream can continue.
    TimeoutError
        Nothing arrived in time.
    """
    sock.settimeout(first_timeout_wall_s)
    return _read_frame(
        _SocketReader(sock),
        allowed=allowed,
        max_payload_bytes=max_payload_bytes,
        on_frame_start=lambda: sock.settimeout(timeout_wall_s),
    )


def decode_frame(data: bytes, *, allowed: frozenset[MessageType] = frozenset(MessageType)) -> Frame:
    """Decode exactly one frame held in ``data``; trailing bytes are an error."""
    reader = _BytesReader(data)
    try:
        frame = _read_frame(reader, allowed=allowed, max_payload_bytes=MAX_PAYLOAD_BYTES)
    except PeerClosed as exc:
        raise BridgeProtocolError(ErrorCode.BAD_MESSAGE, "empty input: no frame", framing_lost=True) from exc
    if reader.remaining:
        raise BridgeProtocolError(
            ErrorCode.BAD_MESSAGE, f"{reader.remaining} bytes after the end of the frame", framing_lost=True, request_id=frame.request_id
        )
    return frame


def _byte_view(array: np.ndarray) -> memoryview:
    """A flat byte view of a C-contiguous array's buffer (no copy; works for 0-d and empty arrays)."""
    return array.reshape(-1).view(np.uint8).data


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'header'}: {e['msg']}" for e in exc.errors()[:5])


__all__ = [
    "DEFAULT_PORT",
    "HEADER_MODELS",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_REQUEST_PAYLOAD_BYTES",
    "PREFIX",
    "PROTOCOL_VERSION",
    "REPLY_FOR",
    "REPLY_TYPES",
    "REQUEST_TYPES",
    "SUPPORTED_VERSIONS",
    "WIRE_DTYPES",
    "ArraySpec",
    "BridgeProtocolError",
    "ConfigureRequest",
    "ConfiguredReply",
    "ErrorCode",
    "ErrorInfo",
    "ErrorReply",
    "FireRequest",
    "Frame",
    "IdentifyRequest",
    "IdentityReply",
    "MessageHeader",
    "PeerClosed",
    "ScanRefused",
    "ScanReply",
    "StateReply",
    "StatusRequest",
    "decode_frame",
    "encode_frame",
    "error_header",
    "frame_buffers",
    "recv_frame",
    "send_frame",
]
