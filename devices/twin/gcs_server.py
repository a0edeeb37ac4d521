"""GCS 2.0 server of the twin's PI C-887 hexapod controller, over TCP and over a pseudo-terminal.

It answers the bytes ``pipython`` 2.11 sends (``PISocket`` or ``PISerial`` -> ``GCSMessages`` ->
``GCSCommands``), so the real driver code runs against it unchanged.

Wire format (PI GCS 2.0, as ``pipython`` writes and parses it):

- text in cp1252; a command ends with LF; the single-character commands ``#5`` (0x05),
  ``#7`` (0x07) and ``#24`` (0x18) carry no LF and act at once, even inside a partial line;
- a reply ends at an LF not preceded by a space: the lines of a multi-line reply are joined
  with " \\n"; set commands have no reply;
- a refused command answers nothing (a refused query answers an empty line, so the client does
  not wait for a reply that never comes) and leaves its code in the error register for ``ERR?``.

Commands: ``*IDN?``, ``CSV?``, ``ERR?``, ``HLP?``, ``SAI?`` [``ALL``], ``POS?``, ``MOV?``,
``ONT?``, ``SVO?``, ``FRF?``, ``TMN?``, ``TMX?`` (all with optional axes), ``MOV``, ``MVR``,
``SVO`` (axis/value pairs), ``FRF`` [axes], ``VLS``, ``VLS?``, ``HLT`` [axes], ``STP``,
``#5`` (hex mask of moving axes), ``#7`` (0xB1 ready, 0xB0 busy), ``#24`` (= ``STP``).
"""

from __future__ import annotations

import math
import os
import selectors
import socket
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shearlab.devices.twin.guard import MAX_CONNECTIONS, PARTIAL_MESSAGE_S, CpuBudget, Offender
from shearlab.devices.twin.hexapod_model import AXES, CommandRefused, GcsErrorCode, HexapodModel

ENCODING = "cp1252"
LF = 0x0A
SINGLE_CHARACTER_COMMANDS = {0x05: "#5", 0x07: "#7", 0x18: "#24"}
IDENTITY = "(c)2026 Physik Instrumente (PI) GmbH & Co. KG, C-887, shearlab-twin, 2.8.0"
GCS_SYNTAX_VERSION = "2.0"
READY = "\xb1"
BUSY = "\xb0"
# A line longer than this without LF is garbage, not a command: a TCP client sending one loses its
# connection (the pty, a serial line, drops the line and reads on).
MAX_LINE_BYTES = 4096
# How often the serving thread looks for TCP clients that began a line and stalled (wall seconds).
_STALL_CHECK_S = 1.0
_SEND_TIMEOUT_S = 1.0
# The transcript keeps the latest commands only: a twin serving a campaign for hours would
# otherwise hold millions of polls; tests look at a few hundred.
TRANSCRIPT_LENGTH = 10_000
# Serving thread join on close: it wakes at once through a pipe, so this is only a safety net.
_JOIN_TIMEOUT_S = 2.0

_Handler = Callable[[list[str]], list[str] | None]


def format_reply(lines: list[str]) -> str:
    """Join reply lines the GCS way: " \\n" between lines, a bare LF at the end."""
    return " \n".join(lines) + "\n"


class GcsInterpreter:
    """Turns one command string into its reply, acting on a ``HexapodModel``."""

    def __init__(self, model: HexapodModel) -> None:
        self._model = model
        self._commands: dict[str, _Handler] = {
            "*IDN?": lambda args: [IDENTITY],
            "CSV?": lambda args: [GCS_SYNTAX_VERSION],
            "ERR?": lambda args: [str(model.take_error())],
            "HLP?": self._help,
            "SAI?": self._axes,
            "POS?": lambda args: _per_axis(args, model.position_mm(), _number),
            "MOV?": lambda args: _per_axis(args, model.targets(), _number),
            "ONT?": lambda args: _per_axis(args, model.on_target(), _flag),
            "SVO?": lambda args: _per_axis(args, model.servo(), _flag),
            "FRF?": lambda args: _per_axis(args, model.referenced(), _flag),
            "TMN?": lambda args: _per_axis(args, model.limits()[0], _number),
            "TMX?": lambda args: _per_axis(args, model.limits()[1], _number),
            "VLS?": lambda args: [_number(model.velocity_mm_s())],
            "MOV": lambda args: model.move_absolute(_axis_values(args, _parse_float)),
            "MVR": lambda args: model.move_relative(_axis_values(args, _parse_float)),
            "SVO": lambda args: model.set_servo(_axis_values(args, _servo_state)),
            "FRF": self._reference,
            "VLS": self._velocity,
            "HLT": self._halt,
            "STP": self._stop,
            "#5": lambda args: [f"{model.moving_mask():X}"],
            "#7": lambda args: [READY if model.is_ready() else BUSY],
            "#24": self._stop,
        }

    @property
    def commands(self) -> list[str]:
        return list(self._commands)

    def execute(self, command: str) -> str | None:
        """Run ``command`` (without its LF); return the reply text, or None for no reply."""
        if not command.strip():
            return None
        name, *args = command.split()
        handler = self._commands.get(name.upper())
        is_query = name.endswith("?") or name.startswith("#")
        if handler is None:
            self._model.set_error(GcsErrorCode.UNKNOWN_COMMAND)
            return "\n" if is_query else None
        try:
            lines = handler(args)
        except CommandRefused as refused:
            self._model.set_error(refused.code)
            return "\n" if is_query else None
        return None if lines is None else format_reply(lines)

    def _help(self, args: list[str]) -> list[str]:
        _no_arguments(args)
        # pipython drops the first and last line and reads the command name from each other line.
        return ["The following commands are valid:", *self.commands, "end of help"]

    def _axes(self, args: list[str]) -> list[str]:
        if args not in ([], ["ALL"]):
            raise CommandRefused(GcsErrorCode.PARAM_SYNTAX, "SAI? takes nothing or ALL")
        return list(AXES)

    def _reference(self, args: list[str]) -> None:
        _known_axes(args)
        # The hexapod references all six axes together whichever are named.
        self._model.reference()

    def _velocity(self, args: list[str]) -> None:
        if len(args) != 1:
            raise CommandRefused(GcsErrorCode.PARAM_SYNTAX, "VLS takes one value")
        self._model.set_velocity(_parse_float(args[0]))

    def _halt(self, args: list[str]) -> None:
        _known_axes(args)
        # The legs are coupled: halting one axis of a hexapod halts the platform.
        self._model.halt()

    def _stop(self, args: list[str]) -> None:
        _no_arguments(args)
        self._model.halt()


def _number(value: float) -> str:
    return f"{value:.6f}"


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _no_arguments(args: list[str]) -> None:
    if args:
        raise CommandRefused(GcsErrorCode.PARAM_SYNTAX, "no arguments expected")


def _known_axes(args: list[str]) -> list[str]:
    for axis in args:
        if axis not in AXES:
            raise CommandRefused(GcsErrorCode.INVALID_AXIS, f"no axis {axis!r}")
    return args or list(AXES)


def _per_axis(args: list[str], values: dict[str, Any], fmt: Callable[[Any], str]) -> list[str]:
    return [f"{axis}={fmt(values[axis])}" for axis in _known_axes(args)]


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandRefused(GcsErrorCode.PARAM_SYNTAX, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise CommandRefused(GcsErrorCode.PARAM_SYNTAX, f"not a finite number: {text!r}")
    return value


def _servo_state(text: str) -> bool:
    if text not in ("0", "1"):
        raise CommandRefused(GcsErrorCode.PARAM_OUT_OF_RANGE, f"servo state must be 0 or 1, got {text!r}")
    return text == "1"


def _axis_values(args: list[str], parse: Callable[[str], Any]) -> dict[str, Any]:
    if not args or len(args) % 2:
        raise CommandRefused(GcsErrorCode.PARAM_SYNTAX, "expected axis/value pairs")
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    _known_axes(list(pairs))
    return {axis: parse(text) for axis, text in pairs.items()}


@dataclass
class _Session:
    """One client link: bytes of a partial line and when it began, how to answer, what it may spend."""

    write: Callable[[bytes], None]
    serial: bool = False
    line: bytearray = field(default_factory=bytearray)
    line_started: float = 0.0
    budget: CpuBudget = field(default_factory=CpuBudget)


class GCSServer:
    """Serves one ``HexapodModel`` over TCP or a pseudo-terminal, from one daemon thread.

    Build it with ``GCSServer.tcp(host, port, model)`` or ``GCSServer.pty(model)``, then
    ``start()``; ``close()`` stops it. Every command received is appended to ``transcript``
    (single-character commands as ``#5``, ``#7``, ``#24``; the latest ``TRANSCRIPT_LENGTH``
    are kept), so tests can assert the conversation.
    ``unplug()`` makes the controller deaf and mute, as with a pulled cable, until ``replug()``.
    """

    def __init__(
        self,
        model: HexapodModel,
        *,
        listener: socket.socket | None = None,
        pty_fds: tuple[int, int] | None = None,
    ) -> None:
        if (listener is None) == (pty_fds is None):
            raise ValueError("give exactly one of listener or pty_fds; use GCSServer.tcp or GCSServer.pty")
        self.model = model
        self.transcript: deque[str] = deque(maxlen=TRANSCRIPT_LENGTH)
        self._interpreter = GcsInterpreter(model)
        self._listener = listener
        self._pty_fds = pty_fds
        self._device_path = None if pty_fds is None else os.ttyname(pty_fds[1])
        self._address = None if listener is None else listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._connections: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._plugged = threading.Event()
        self._plugged.set()
        self._closed = False

    @classmethod
    def tcp(cls, host: str, port: int, model: HexapodModel) -> GCSServer:
        """Listen on ``host:port`` (port 0 picks a free one; see ``port``)."""
        listener = socket.create_server((host, port))
        return cls(model, listener=listener)

    @classmethod
    def pty(cls, model: HexapodModel) -> GCSServer:
        """A pseudo-terminal whose ``device_path`` pyserial and ``PISerial`` open like a port."""
        controller_fd, device_fd = os.openpty()
        # Raw mode: no echo, no CR/LF translation, 0x18 is data.
        tty.setraw(device_fd)
        return cls(model, pty_fds=(controller_fd, device_fd))

    @property
    def host(self) -> str | None:
        return None if self._address is None else self._address[0]

    @property
    def port(self) -> int | None:
        return None if self._address is None else self._address[1]

    @property
    def device_path(self) -> str | None:
        """``/dev/pts/N`` of a pseudo-terminal server; the server keeps this end open too, so a
        client may close and reopen it."""
        return self._device_path

    def start(self) -> None:
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self._listener is not None:
            self._listener.setblocking(False)
            self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        else:
            assert self._pty_fds is not None, "a pty server has its pty from construction"
            controller_fd = self._pty_fds[0]
            session = _Session(lambda data: _write_all(controller_fd, data), serial=True)
            self._selector.register(controller_fd, selectors.EVENT_READ, session)
        name = f"gcs-server-{self.port or self.device_path}"
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port or pseudo-terminal; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT_S)
        self._selector.close()
        for conn in self._connections:
            conn.close()
        if self._listener is not None:
            self._listener.close()
        for fd in (*(self._pty_fds or ()), self._wake_r, self._wake_w):
            os.close(fd)

    def unplug(self) -> None:
        """Drop every byte received and answer nothing until ``replug()``."""
        self._plugged.clear()

    def replug(self) -> None:
        self._plugged.set()

    def __enter__(self) -> GCSServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            for key, _ in self._selector.select(_STALL_CHECK_S):
                if key.data == "wake":
                    return
                if key.data == "accept":
                    self._accept()
                else:
                    self._receive(key)
            self._drop_stalled()

    def _drop_stalled(self) -> None:
        """Close TCP clients that began a line more than ``PARTIAL_MESSAGE_S`` ago and did not end it."""
        now = time.monotonic()
        for key in list(self._selector.get_map().values()):
            session = key.data
            if isinstance(session, _Session) and not session.serial and session.line and now - session.line_started > PARTIAL_MESSAGE_S:
                self._drop(key)

    def _accept(self) -> None:
        assert self._listener is not None, "only a TCP server accepts"
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        if len(self._connections) >= MAX_CONNECTIONS:
            conn.close()  # at the bound: the newcomer waits for a free slot
            return
        # Replies are sent from the one serving thread: a client that stops reading them may hold it this
        # long before it is dropped, no longer (a reading client never waits on a send).
        conn.settimeout(_SEND_TIMEOUT_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections.append(conn)
        self._selector.register(conn, selectors.EVENT_READ, _Session(conn.sendall))

    def _receive(self, key: selectors.SelectorKey) -> None:
        try:
            data = os.read(key.fd, 4096)
        except OSError:
            data = b""
        if not data:
            self._drop(key)
            return
        if not self._plugged.is_set():
            return
        session: _Session = key.data
        try:
            if session.serial:
                self._feed(session, data)  # a serial line cannot be hung up: it is never cut off
            else:
                with session.budget.metered():
                    self._feed(session, data)
        except (Offender, OSError):
            self._drop(key)

    def _drop(self, key: selectors.SelectorKey) -> None:
        self._selector.unregister(key.fileobj)
        if isinstance(key.fileobj, socket.socket):
            self._connections.remove(key.fileobj)
            key.fileobj.close()

    def _feed(self, session: _Session, data: bytes) -> None:
        for byte in data:
            if byte in SINGLE_CHARACTER_COMMANDS:
                self._run(session, SINGLE_CHARACTER_COMMANDS[byte])
            elif byte == LF:
                command = session.line.decode(ENCODING, errors="replace").strip()
                session.line.clear()
                if command:
                    self._run(session, command)
            elif len(session.line) < MAX_LINE_BYTES:
                if not session.line:
                    session.line_started = time.monotonic()
                session.line.append(byte)
            elif not session.serial:
                raise Offender(f"line longer than {MAX_LINE_BYTES} bytes")

    def _run(self, session: _Session, command: str) -> None:
        self.transcript.append(command)
        reply = self._interpreter.execute(command)
        if reply is not None:
            session.write(reply.encode(ENCODING))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
