"""PI C-887 hexapod controller (H-820 hexapod) through ``pipython``, GCS 2.0, without PI's DLL.

The transport is ``pipython``'s own: ``PISocket`` (TCP, default port 50000) or ``PISerial``
(RS-232, 115200 baud 8N1 on the C-887) under ``GCSMessages`` and ``GCSCommands``. ``pipython``
asks ``ERR?`` after every command and raises its own ``GCSError``; this module turns that into
the typed device errors of ``shearlab.devices.errors``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from pipython import GCSError as PIGCSError
from pipython.pidevice import gcserror
from pipython.pidevice.gcs2.gcs2commands import GCS2Commands
from pipython.pidevice.gcscommands import GCSCommands
from pipython.pidevice.gcsmessages import GCSMessages
from pipython.pidevice.interfaces.pigateway import PI_CONTROLLER_CODEPAGE, PIGateway
from pipython.pidevice.interfaces.piserial import PISerial
from pipython.pidevice.interfaces.pisocket import PISocket

from shearlab.devices.clock import Clock
from shearlab.devices.errors import (
    DeviceConnectionError,
    DeviceError,
    DeviceFaultError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from shearlab.devices.hexapod.limits import (
    AXES,
    check_travel,
    checked_axes,
    checked_velocity_mm_s,
)
from shearlab.devices.interfaces import DeviceStatus
from shearlab.protocols.rig import HexapodLimits

DEFAULT_PORT = 50000
DEFAULT_BAUDRATE = 115200
# One exchange is a command and pipython's ERR?; the controller answers within milliseconds, the
# margin covers a loaded host.
REPLY_TIMEOUT_S = 5.0
# A connect to an address where nothing answers otherwise waits for the OS's SYN retries (minutes).
CONNECT_TIMEOUT_S = 5.0
# The H-820 references in well under a minute; three leave room for a slow start.
REFERENCE_TIMEOUT_S = 180.0
POLL_INTERVAL_S = 0.05
# Polls never come faster than this in wall seconds: on a fast twin clock a 50 ms virtual poll
# would otherwise spin on the link.
MIN_POLL_WALL_S = 0.002


class GCSError(DeviceError):
    """The controller refused a command; ``code`` is the GCS error number.

    Codes seen with the hexapod: 1 parameter syntax, 2 unknown command, 5 move without reference
    or with servo off, 7 position out of limits, 10 stopped by ``STP``/``HLT``, 15 invalid axis,
    17 parameter out of range.
    """

    def __init__(self, device: str, code: int, command: str = "") -> None:
        self.code = int(code)
        self.meaning = gcs_error_meaning(code)
        after = f" after {command}" if command else ""
        super().__init__(device, f"GCS error {self.code} ({self.meaning}){after}")


def gcs_error_meaning(code: int) -> str:
    """PI's text for a GCS error number (from ``pipython``'s table)."""
    return str(PIGCSError.translate_error(int(code))).removesuffix(f" {int(code)}")


class _PISocket(PISocket):
    """``PISocket`` with a connect timeout, and a closed link reported as an error.

    - ``PISocket`` connects without a timeout: an address where nothing answers (cable out, wrong
      IP) blocks for the OS's SYN retries, minutes on Linux.
    - ``PISocket.read`` turns every socket error, and the empty read of a peer that closed the
      link, into "no data yet", so a lost controller looks like a slow one until the timeout.
    - The connection callback is left out: ``pipython`` keeps those callbacks in one class-wide
      list, so every connect would make every other live ``GCSCommands`` re-query its own
      controller from this thread.
    """

    def __init__(self, host: str, port: int, *, connect_timeout_s: float) -> None:
        self._connect_timeout_s = connect_timeout_s
        super().__init__(host, port)

    def ConnectTCPIP(self, ipaddress: str, ipport: int = DEFAULT_PORT) -> None:  # noqa: N802 (pipython's name)
        sock = socket.create_connection((ipaddress, ipport), timeout=self._connect_timeout_s)
        # PISocket polls a non-blocking socket and expects no Nagle delay on short commands.
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host, self._port, self._socket, self._connected = ipaddress, ipport, sock, True
        self.flush()

    def read(self) -> str:
        try:
            received = self._socket.recv(2048)
        except BlockingIOError:
            return ""
        if not received:
            raise ConnectionResetError(f"{self._host}:{self._port} closed the connection")
        return received.decode(PI_CONTROLLER_CODEPAGE, errors="ignore")


class PIHexapod:
    """A PI hexapod on a C-887 controller, implementing ``shearlab.devices.interfaces.Hexapod``.

    Axes X, Y, Z in millimetres, U, V, W in degrees. Moves are validated against the rig's
    ``HexapodLimits`` before any byte is sent; every wait runs on ``clock``. Links: TCP port
    50000, or RS-232 at 115200 baud 8N1; replies must come within ``REPLY_TIMEOUT_S``.

    ======================  ===========================================
    method                  GCS commands (each followed by ``ERR?``)
    ======================  ===========================================
    connect                 ``CSV?``, ``*IDN?``, ``SAI? ALL``
    ``reference``           ``SVO?``, ``SVO``, ``FRF?``, ``FRF``, ``#7``, ``FRF?``
    ``set_velocity``        ``VLS``
    ``move_absolute``       ``MOV``
    ``move_relative``       ``MOV?``, ``MVR``
    ``position``            ``POS?``
    ``is_moving``           ``#5``
    ``wait_on_target``      ``ONT?`` (``POS?``, ``MOV?`` on timeout)
    ``halt``                ``HLT`` (error 10 expected and cleared)
    ``status``              ``*IDN?``, ``#7``, ``SVO?``, ``FRF?``, ``#5``
    ======================  ===========================================
    """

    def __init__(self, gcs: GCSCommands, *, limits: HexapodLimits, clock: Clock, name: str, address: str) -> None:
        """Wrap a connected ``GCSCommands``; use ``PIHexapod.tcp`` or ``PIHexapod.serial``."""
        self.name = name
        self.address = address
        self.limits = limits
        self.identity = ""
        self._gcs = gcs
        self._clock = clock
        self._closed = False
        self._poll_s = max(POLL_INTERVAL_S, MIN_POLL_WALL_S * clock.speed)

    @classmethod
    def tcp(
        cls,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        limits: HexapodLimits,
        clock: Clock,
        name: str = "hexapod",
    ) -> PIHexapod:
        """Connect over TCP; ``DeviceConnectionError`` names the address if nothing answers."""
        address = f"{host}:{port}"
        try:
            gateway = _PISocket(host, port, connect_timeout_s=clock.io_timeout(CONNECT_TIMEOUT_S))
        except OSError as exc:
            raise DeviceConnectionError(name, f"cannot reach the PI controller at {address}: {exc}") from exc
        return cls._open(gateway, limits=limits, clock=clock, name=name, address=address)

    @classmethod
    def serial(
        cls,
        port: str,
        baudrate: int = DEFAULT_BAUDRATE,
        *,
        limits: HexapodLimits,
        clock: Clock,
        name: str = "hexapod",
    ) -> PIHexapod:
        """Connect over a serial port (or a pseudo-terminal such as the twin's)."""
        try:
            gateway = PISerial(port, baudrate)
        except OSError as exc:
            raise DeviceConnectionError(name, f"cannot open serial port {port}: {exc}") from exc
        return cls._open(gateway, limits=limits, clock=clock, name=name, address=port)

    @classmethod
    def _open(cls, gateway: PIGateway, *, limits: HexapodLimits, clock: Clock, name: str, address: str) -> PIHexapod:
        messages = GCSMessages(gateway)
        messages.timeout = round(clock.io_timeout(REPLY_TIMEOUT_S) * 1000)
        try:
            gcs = GCSCommands(messages)
        except (PIGCSError, OSError) as exc:
            with suppress(OSError):
                gateway.close()
            raise DeviceConnectionError(name, f"no GCS handshake with {address}: {exc}") from exc
        # We never reconnect a gateway, and the class-wide callback list would let other
        # connections drive this one (see _PISocket).
        gateway.unregister_connection_status_changed_callback(gcs.connection_status_changed)
        hexapod = cls(gcs, limits=limits, clock=clock, name=name, address=address)
        try:
            hexapod._check_controller()
        except DeviceError:
            hexapod.close()
            raise
        return hexapod

    def _check_controller(self) -> None:
        if not isinstance(self._gcs.gcscommands, GCS2Commands):
            raise DeviceProtocolError(self.name, f"{self.address} does not speak GCS 2.0")
        try:
            with self._exchange("*IDN?"):
                self.identity = self._gcs.qIDN().strip()
        except DeviceTimeoutError as exc:
            raise DeviceConnectionError(self.name, f"no PI controller answers at {self.address}") from exc
        with self._exchange("SAI? ALL"):
            axes = self._gcs.allaxes
        if not set(AXES) <= set(axes):
            raise DeviceFaultError(self.name, f"controller reports axes {axes}, a hexapod has {' '.join(AXES)}")

    # -- Hexapod protocol ---------------------------------------------------------------------
    def status(self) -> DeviceStatus:
        """Identity (``*IDN?``), state, and the latency of one round trip (``#7``) in wall ms."""
        with self._exchange("*IDN?"):
            identity = self._gcs.qIDN().strip()
        started = time.perf_counter()
        with self._exchange("#7"):
            ready = self._gcs.IsControllerReady()
        latency_ms = (time.perf_counter() - started) * 1e3
        if not ready:
            state = "busy"
        elif not self.is_referenced():
            state = "not referenced"
        elif not all(self._servo().values()):
            state = "servo off"
        elif self.is_moving():
            state = "moving"
        else:
            state = "ready"
        return DeviceStatus(name=self.name, identity=identity, state=state, latency_ms=latency_ms)

    def reference(self, timeout_s: float = REFERENCE_TIMEOUT_S) -> None:
        """Servo on, then reference (``FRF``) unless already referenced; returns when done.

        Raises ``DeviceTimeoutError`` if the controller is still busy after ``timeout_s`` virtual
        seconds, ``DeviceFaultError`` if referencing ended without success (e.g. halted).
        """
        if not all(self._servo().values()):
            self.set_servo(True)
        if self.is_referenced():
            return
        with self._exchange("FRF"):
            self._gcs.FRF()
        deadline = self._clock.deadline(timeout_s)
        while True:
            with self._exchange("#7"):
                ready = self._gcs.IsControllerReady()
            if ready:
                break
            if deadline.expired():
                raise DeviceTimeoutError(self.name, f"referencing not finished after {timeout_s:g} s")
            self._clock.sleep(self._poll_s)
        if not self.is_referenced():
            raise DeviceFaultError(self.name, "referencing ended but the axes are not referenced")

    def is_referenced(self) -> bool:
        with self._exchange("FRF?"):
            return all(self._gcs.qFRF().values())

    def set_servo(self, on: bool) -> None:
        """Servo of all six axes (``SVO``); the legs of a hexapod move together."""
        with self._exchange("SVO"):
            self._gcs.SVO(list(AXES), [bool(on)] * len(AXES))

    def set_velocity(self, mm_s: float) -> None:
        """System velocity (``VLS``) in mm/s; refused above ``limits.max_velocity_mm_s``."""
        velocity = checked_velocity_mm_s(self.name, self.limits, mm_s)
        with self._exchange("VLS"):
            self._gcs.VLS(velocity)

    def move_absolute(self, target: dict[str, float]) -> None:
        """Start a move to ``{axis: position}`` (``MOV``); returns at once.

        ``ValueError`` for unknown axes or non-numbers, ``SafetyLimitError`` for X, Y, Z beyond
        ``limits.max_travel_mm``; in both cases nothing is sent.
        """
        target = checked_axes(target)
        check_travel(self.name, self.limits, target)
        with self._exchange("MOV"):
            self._gcs.MOV(list(target), list(target.values()))

    def move_relative(self, delta: dict[str, float]) -> None:
        """Start a move by ``{axis: step}`` from the present targets (``MVR``); returns at once.

        The resulting targets are read (``MOV?``) and checked against the travel limit before
        ``MVR`` is sent; malformed steps are refused before any I/O.
        """
        delta = checked_axes(delta)
        with self._exchange("MOV?"):
            targets = self._gcs.qMOV(list(delta))
        check_travel(self.name, self.limits, {axis: float(targets[axis]) + step for axis, step in delta.items()})
        with self._exchange("MVR"):
            self._gcs.MVR(list(delta), list(delta.values()))

    def position(self) -> dict[str, float]:
        """All six axes (``POS?``): X, Y, Z in mm, U, V, W in degrees."""
        with self._exchange("POS?"):
            answer = self._gcs.qPOS()
        return {axis: float(answer[axis]) for axis in AXES}

    def is_moving(self) -> bool:
        """True while any axis moves (``#5``)."""
        with self._exchange("#5"):
            return any(self._gcs.IsMoving().values())

    def wait_on_target(self, timeout_s: float) -> None:
        """Block until every axis is on target (``ONT?``), polling on the clock.

        Raises ``DeviceTimeoutError`` naming the axes still off target (with their position and
        target) after ``timeout_s`` virtual seconds, and ``GCSError`` code 10 if the motion was
        stopped.
        """
        deadline = self._clock.deadline(timeout_s)
        while True:
            with self._exchange("ONT?"):
                on_target = self._gcs.qONT()
            off = [axis for axis in AXES if not on_target.get(axis, False)]
            if not off:
                return
            if deadline.expired():
                with self._exchange("POS?"):
                    where = self._gcs.qPOS(off)
                with self._exchange("MOV?"):
                    goal = self._gcs.qMOV(off)
                detail = ", ".join(f"{a} at {float(where[a]):.4f}, target {float(goal[a]):.4f}" for a in off)
                raise DeviceTimeoutError(
                    self.name, f"axes {' '.join(off)} not on target after {timeout_s:g} s ({detail})"
                )
            self._clock.sleep(self._poll_s)

    def halt(self) -> None:
        """Stop all axes (``HLT``); safe in any state. The controller's error 10 is expected."""
        with self._exchange("HLT"):
            self._gcs.HLT(noraise=True)

    def close(self) -> None:
        """Close the link; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with suppress(OSError):
            self._gcs.messages.interface.close()

    def __enter__(self) -> PIHexapod:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _servo(self) -> dict[str, bool]:
        with self._exchange("SVO?"):
            return dict(self._gcs.qSVO())

    @contextmanager
    def _exchange(self, command: str) -> Iterator[None]:
        """Translate what ``pipython`` raises during ``command`` into shearlab's device errors."""
        if self._closed:
            raise DeviceConnectionError(self.name, f"link to {self.address} is closed")
        try:
            yield
        except PIGCSError as exc:
            code = int(exc.val)
            if code == gcserror.E_7_COM_TIMEOUT:
                raise DeviceTimeoutError(self.name, f"no reply from {self.address} to {command}") from exc
            if code == gcserror.E_1004_PI_UNEXPECTED_RESPONSE:
                raise DeviceProtocolError(self.name, f"unexpected reply to {command}: {exc}") from exc
            if code < 0:
                raise DeviceConnectionError(
                    self.name, f"link to {self.address} failed during {command}: {exc}"
                ) from exc
            raise GCSError(self.name, code, command) from exc
        except (ValueError, TypeError, IndexError) as exc:
            # pipython's parsers raise these on a garbled reply.
            raise DeviceProtocolError(self.name, f"unexpected reply to {command}: {exc}") from exc
        except OSError as exc:
            raise DeviceConnectionError(self.name, f"link to {self.address} lost during {command}: {exc}") from exc

