"""Driver of ATI's serial F/T controller (Nano17 under the hexapod plate, Nano43 on the flange).

All bytes go through one ``serial.Serial`` port; this module builds the command lines and parses the
replies. The same driver talks to the controller's RS-232 port or to the twin's pseudo-terminal
(``shearlab.devices.twin.ati_controller``).
"""

from __future__ import annotations

import logging
import numbers
import re
import termios
import time
from collections.abc import Iterator
from types import TracebackType

import numpy as np
import serial

from shearlab.devices.clock import Clock
from shearlab.devices.errors import (
    DeviceConnectionError,
    DeviceError,
    DeviceFaultError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from shearlab.devices.force.calibration import FTCalibration, calibration_for
from shearlab.devices.interfaces import DeviceStatus, WrenchSample

_log = logging.getLogger(__name__)

CR = b"\r"
EOL = b"\r\n"
# Every reply to a command, and the end of a stopped stream, ends with CR LF and the prompt.
PROMPT = b"\r\n>"
STATUS_SATURATED = 0x0001
_ERROR_FLAGS = 0xFFFF
COUNTER_SHIFT = 16
COUNTER_MODULO = 1 << 16
# ``SA`` accepts 1..16 raw samples per record on the controller.
MAX_AVERAGING = 16
# Longest line worth quoting in an error message.
_SHOW_BYTES = 48
# One field: optional padding, optional minus, digits.
_FIELD = re.compile(rb" *-?\d+")
_STATUS = re.compile(rb"\d+")
# pyserial lets termios errors through from tcflush (e.g. EIO once the cable is pulled).
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class ATISerialSensor:
    """One ATI F/T sensor behind its serial controller, read in ASCII, resolved F/T mode.

    Serial settings: ``baudrate`` (115200 by default), 8 data bits, no parity, 1 stop bit, no flow
    control. Commands end with CR; the controller echoes each line, then its reply lines (CR LF),
    then the prompt ``>``.

    ========== ===================================================================================
    Command    Use
    ========== ===================================================================================
    CR         ``connect``: stops a stream left running and resynchronises on the prompt.
    ``CD A``   ``configure``: ASCII output.
    ``CD R``   ``configure``: resolved force/torque.
    ``CV 3F``  ``configure``: all six axes in every record.
    ``SA n``   ``configure``: average ``n`` raw samples per record (1..16).
    ``SB``     ``bias``: store the present load as the zero.
    ``SU``     ``unbias``.
    ``QR``     ``read``: one record.
    ``QS``     ``stream``: records at the controller rate until a CR stops them.
    ========== ===================================================================================

    Records are ``status,Fx,Fy,Fz,Tx,Ty,Tz`` in counts; the counts per unit come from
    ``calibration.py``. The status word carries error flags in bits 0-15 (bit 0: an axis saturated,
    reported in ``WrenchSample.status``; any other flag raises ``DeviceProtocolError``) and a record
    counter in bits 16-31. The counter advances once per record slot, so the driver numbers samples
    by it: a record the controller (or the link) lost shows as a gap in ``WrenchSample.seq``, is
    counted in ``dropped_records`` and logged. For a controller whose status word has no counter,
    pass ``record_counter=False``: ``seq`` then simply counts records.

    A line that does not parse (non-ASCII bytes, wrong field count, bad numbers, fault flags, a
    reply that does not start with the echo) raises ``DeviceProtocolError`` quoting the bytes; the
    next command discards whatever is left on the line first, so the driver recovers by itself.
    No reply within ``timeout_s`` (virtual, converted by ``clock.io_timeout``) raises
    ``DeviceTimeoutError``; a port that cannot be opened or fails (cable pulled) raises
    ``DeviceConnectionError``.

    Not thread-safe: one owner per instance.
    """

    def __init__(
        self,
        port: str,
        *,
        sensor: str,
        clock: Clock,
        name: str,
        baudrate: int = 115200,
        timeout_s: float = 0.5,
        record_counter: bool = True,
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"baudrate must be a positive integer, got {baudrate!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 virtual seconds, got {timeout_s!r}")
        self.name = name
        self.port = port
        self.calibration: FTCalibration = calibration_for(sensor)
        self._clock = clock
        self._baudrate = baudrate
        self._timeout_s = timeout_s
        self._record_counter = record_counter
        self._serial: serial.Serial | None = None
        self._buffer = bytearray()
        self._streaming = False
        self._last_counter: int | None = None
        self._next_read_seq = 0
        self.dropped_records = 0
        """Records the controller numbered but the driver never received, since ``connect()``."""

    # ----------------------------------------------------------------------------- lifecycle

    def connect(self) -> None:
        """Open the port and resynchronise on the prompt (stopping a stream left running)."""
        if self._serial is not None:
            return
        io_timeout = self._clock.io_timeout(self._timeout_s)
        try:
            self._serial = serial.Serial(
                self.port,
                baudrate=self._baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=io_timeout,
                write_timeout=io_timeout,
                exclusive=True,
            )
        except (*_PORT_ERRORS, ValueError) as exc:
            raise DeviceConnectionError(self.name, f"cannot open serial port {self.port}: {exc}") from exc
        self._buffer.clear()
        self._last_counter = None
        self._next_read_seq = 0
        self.dropped_records = 0
        try:
            self._discard_input()
            self._write(CR)
            self._read_until(PROMPT)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Stop a running stream (best effort) and close the port; safe to call twice."""
        if self._serial is None:
            return
        if self._streaming:
            self._abandon_stream()
        try:
            self._serial.close()
        except _PORT_ERRORS:
            pass
        self._serial = None
        self._streaming = False

    def __enter__(self) -> ATISerialSensor:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---------------------------------------------------------------------------- public API

    def configure(self, *, averaging: int = 1) -> None:
        """ASCII output, resolved force/torque, all six axes, ``averaging`` raw samples per record."""
        if not _is_count(averaging) or not 1 <= averaging <= MAX_AVERAGING:
            raise ValueError(
                f"averaging must be an integer from 1 to {MAX_AVERAGING} raw samples per record, "
                f"got {averaging!r}"
            )
        for command in ("CD A", "CD R", "CV 3F", f"SA {int(averaging)}"):
            self._expect_no_reply(command)

    def bias(self) -> None:
        """Zero the present load (``SB``): later readings are relative to it."""
        self._expect_no_reply("SB")

    def unbias(self) -> None:
        """Forget the stored bias (``SU``): readings are absolute again."""
        self._expect_no_reply("SU")

    def read(self) -> WrenchSample:
        """One record (``QR``); ``seq`` counts single reads since ``connect()``, gaps included."""
        lines = self._exchange("QR")
        if len(lines) != 1:
            raise DeviceProtocolError(self.name, f"QR: expected one record, got {_show(EOL.join(lines))}")
        counter, status, counts = self._parse_record(lines[0])
        seq = self._next_read_seq + self._account(counter)
        self._next_read_seq = seq + 1
        return self._sample(seq, status, counts)

    def stream(self, count: int) -> Iterator[WrenchSample]:
        """``count`` streamed records (``QS``); the stream is stopped and drained afterwards.

        ``seq`` starts at 0 with the first record slot after the stream starts; a dropped record
        leaves a gap. The stream also stops when the iterator is closed early or raises.
        """
        if not _is_count(count) or count < 1:
            raise ValueError(f"count must be a positive integer number of records, got {count!r}")
        self._require_idle()
        return self._stream_records(count)

    def status(self) -> DeviceStatus:
        """Identity, state and the wall-clock latency of one ``QR`` round trip."""
        identity = f"ATI {self.calibration.model} {self.calibration.calibration} on {self.port}"
        if self._serial is None:
            return DeviceStatus(self.name, identity, "disconnected", float("nan"))
        if self._streaming:
            return DeviceStatus(self.name, identity, "streaming", float("nan"))
        started = time.perf_counter()
        try:
            sample = self.read()
        except DeviceError as exc:
            return DeviceStatus(self.name, identity, f"error: {exc.message}", float("nan"))
        latency_ms = (time.perf_counter() - started) * 1e3
        state = "saturated" if sample.status & STATUS_SATURATED else "ok"
        return DeviceStatus(self.name, identity, state, latency_ms)

    # ------------------------------------------------------------------------------ streaming

    def _stream_records(self, count: int) -> Iterator[WrenchSample]:
        self._send_command("QS")
        self._streaming = True
        try:
            echo = self._read_line()
            if echo != b"QS":
                raise DeviceProtocolError(self.name, f"QS: expected the echo, got {_show(echo)}")
            next_seq = 0
            for index in range(count):
                counter, status, counts = self._parse_record(self._read_line())
                seq = next_seq + self._account(counter)
                next_seq = seq + 1
                sample = self._sample(seq, status, counts)
                if index == count - 1:
                    # Stop before handing out the last record, so a consumer that takes exactly
                    # ``count`` records never leaves the controller streaming.
                    self._stop_stream()
                yield sample
        except BaseException:
            # Also reached when the consumer closes the iterator early (GeneratorExit).
            if self._streaming:
                self._abandon_stream()
            raise

    def _abandon_stream(self) -> None:
        """Stop the stream if the link still allows it; the error already raised is the one to report."""
        try:
            self._stop_stream()
        except DeviceError as exc:
            self._last_counter = None
            _log.debug("%s: stopping the stream failed: %s", self.name, exc)

    def _stop_stream(self) -> None:
        """Send one CR, then read to the prompt, following the counter through records in flight."""
        self._streaming = False
        self._write(CR)
        tail = self._read_until(PROMPT)[: -len(PROMPT)]
        for line in tail.split(EOL):
            if not line:
                continue
            try:
                counter, _, _ = self._parse_record(line)
            except DeviceProtocolError:
                continue
            self._last_counter = counter

    # ------------------------------------------------------------------------------- parsing

    def _parse_record(self, line: bytes) -> tuple[int, int, np.ndarray]:
        """Counter, error flags and counts (6,) of one record line (without CR LF).

        A line that fails also breaks the counter chain: the next record starts a new one, so a
        garbled record is reported once, as an error, and not a second time as a dropped one.
        """
        fields = line.split(b",")
        well_formed = (
            len(fields) == 7
            and _STATUS.fullmatch(fields[0]) is not None
            and all(_FIELD.fullmatch(f) for f in fields[1:])
        )
        if not well_formed:
            self._last_counter = None
            raise DeviceProtocolError(self.name, f"garbled record {_show(line)}")
        status_word = int(fields[0])
        flags = status_word & _ERROR_FLAGS
        if flags & ~STATUS_SATURATED:
            self._last_counter = None
            raise DeviceProtocolError(self.name, f"record reports fault flags 0x{flags:04x}: {_show(line)}")
        counts = np.array([int(f) for f in fields[1:]], dtype=np.int64)
        return (status_word >> COUNTER_SHIFT) % COUNTER_MODULO, flags, counts

    def _account(self, counter: int) -> int:
        """Record slots lost between the previous record and this one (counted and logged)."""
        previous, self._last_counter = self._last_counter, counter
        if not self._record_counter or previous is None:
            return 0
        step = (counter - previous) % COUNTER_MODULO
        if step == 0:
            raise DeviceProtocolError(self.name, f"record counter repeated ({counter})")
        lost = step - 1
        if lost:
            self.dropped_records += lost
            _log.warning("%s: %d record(s) dropped before counter %d", self.name, lost, counter)
        return lost

    def _sample(self, seq: int, status: int, counts: np.ndarray) -> WrenchSample:
        force_n, torque_nmm = self.calibration.to_wrench(counts)
        return WrenchSample(
            seq=seq, t_s=self._clock.now(), force_n=force_n, torque_nmm=torque_nmm, status=status
        )

    # -------------------------------------------------------------------------- conversation

    def _expect_no_reply(self, command: str) -> None:
        lines = self._exchange(command)
        if lines:
            raise DeviceProtocolError(self.name, f"{command}: unexpected reply {_show(EOL.join(lines))}")

    def _exchange(self, command: str) -> list[bytes]:
        """Send ``command``; return the reply lines between the echo and the prompt."""
        self._require_idle()
        self._send_command(command)
        frame = self._read_until(PROMPT)
        echo = command.encode("ascii") + EOL
        if not frame.startswith(echo):
            self._last_counter = None
            raise DeviceProtocolError(
                self.name, f"{command}: reply does not start with the echo: {_show(frame)}"
            )
        body = frame[len(echo) : -len(PROMPT)]
        lines = body.split(EOL) if body else []
        errors = [line for line in lines if line.startswith(b"ERROR")]
        if errors:
            raise DeviceFaultError(self.name, f"{command} refused: {errors[0].decode('ascii', 'replace')}")
        return lines

    def _send_command(self, command: str) -> None:
        # Bytes left over from an earlier failure or line noise would be read as this reply.
        self._discard_input()
        self._write(command.encode("ascii") + CR)

    def _require_idle(self) -> None:
        if self._serial is None:
            raise DeviceConnectionError(self.name, "not connected: call connect() first")
        if self._streaming:
            raise RuntimeError(f"{self.name}: a stream is running; finish or close its iterator first")

    # ----------------------------------------------------------------------------- transport

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise DeviceConnectionError(self.name, "not connected: call connect() first")
        return self._serial

    def _discard_input(self) -> None:
        self._buffer.clear()
        try:
            self._port().reset_input_buffer()
        except _PORT_ERRORS as exc:
            raise DeviceConnectionError(self.name, f"serial port {self.port} failed: {exc}") from exc

    def _write(self, data: bytes) -> None:
        try:
            self._port().write(data)
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeoutError(self.name, f"write to {self.port} timed out") from exc
        except _PORT_ERRORS as exc:
            raise DeviceConnectionError(self.name, f"serial port {self.port} failed: {exc}") from exc

    def _read_line(self) -> bytes:
        """One line without its CR LF."""
        return self._read_until(EOL)[: -len(EOL)]

    def _read_until(self, terminator: bytes) -> bytes:
        """Bytes up to and including ``terminator``; ``DeviceTimeoutError`` after ``timeout_s``.

        Reads whatever has arrived in one call, so a stream costs one system call per batch of
        records rather than one per byte.
        """
        port = self._port()
        deadline = time.monotonic() + self._clock.io_timeout(self._timeout_s)
        while (end := self._buffer.find(terminator)) < 0:
            if time.monotonic() > deadline:
                raise DeviceTimeoutError(
                    self.name,
                    f"no {_show(terminator)} within {self._timeout_s} s; got {_show(bytes(self._buffer))}",
                )
            try:
                chunk = port.read(max(1, port.in_waiting))
            except _PORT_ERRORS as exc:
                raise DeviceConnectionError(self.name, f"serial port {self.port} failed: {exc}") from exc
            if not chunk:
                raise DeviceTimeoutError(
                    self.name, f"no answer within {self._timeout_s} s; got {_show(bytes(self._buffer))}"
                )
            self._buffer.extend(chunk)
        end += len(terminator)
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data


def _is_count(value: object) -> bool:
    """An integer (Python or numpy), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _show(data: bytes) -> str:
    """``data`` quoted for an error message, truncated to ``_SHOW_BYTES``."""
    if len(data) <= _SHOW_BYTES:
        return repr(data)
    return f"{data[:_SHOW_BYTES]!r}... ({len(data)} bytes)"
