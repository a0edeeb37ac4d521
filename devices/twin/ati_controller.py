"""Digital twin of ATI's serial F/T controller, served on a pseudo-terminal.

``ATISerialTwin`` opens a pty pair; ``device_path`` (``/dev/pts/N``) is opened by pyserial exactly
like the controller's RS-232 port. The twin's thread answers the controller's ASCII protocol on the
master side; the slave side is in raw mode (no echo, no CR/LF translation by the line discipline),
so every byte on the wire is one the controller sent.

Serial settings: 115200 baud, 8 data bits, no parity, 1 stop bit, no flow control (a pty ignores the
baud rate; the driver sets it for real hardware).

Conversation (the convention of ATI's F/T controller manual: commands echoed, lines ending CR LF,
prompt ``>``):

- The host sends a command line ending with CR (a LF is ignored). The controller echoes the line
  followed by CR LF, then any reply lines, each ending CR LF, then the prompt ``>``. So every reply
  to a command ends with the three bytes CR LF ``>``; an empty line is answered by CR LF ``>``.
- Errors are one reply line ``ERROR: <reason>``.

======== ==========================================================================================
Command  Meaning
======== ==========================================================================================
``QR``   Query one record: one record line.
``QS``   Query stream: echo, then one record line per sample period of the virtual clock, with no
         prompt, until any character arrives. That character is discarded (it is not a command);
         the controller finishes the records already queued and answers CR LF ``>``.
``CD A`` ASCII output (the only output format of this twin).
``CD B`` Binary output: answered ``ERROR: binary output not supported``.
``CD R`` Resolved force/torque output (the only data mode; ``CD G`` raw gauges is refused).
``SA n`` Average ``n`` raw samples (1..16) per record: the noise std falls by ``sqrt(n)``.
``SB``   Bias: store the present reading as the offset subtracted from every later record.
``SU``   Unbias: clear the stored offset.
``CV h`` Axis mask, hexadecimal 1..3F (bit 0 Fx ... bit 5 Tz): only the selected axes are sent.
======== ==========================================================================================

Record line: ``status,Fx,Fy,Fz,Tx,Ty,Tz`` in counts (fields after the status right-aligned in six
characters), CR LF. The status word is a decimal unsigned 32-bit integer:

- bits 0-15: error flags, 0 when healthy. Bit 0 = saturated: at least one axis was clipped at the
  calibration range (the reading is valid but clipped). The twin sets no other bit.
- bits 16-31: record counter, modulo 65536, incremented once per record slot. A host detects a
  dropped record as a jump of the counter by more than one; ``drop_records(n)`` consumes ``n``
  slots without sending them.

Load model: ``FTSensorModel`` (``ft_sensor_model.py``, shared with the in-process simulation): the
true load from ``wrench_fn()`` plus averaged noise, in integer counts, clipped and biased.

Streaming in virtual time: record ``k`` of a stream belongs to the slot ending at
``t0 + (k + 1) / sample_rate_hz`` on the virtual clock and is never sent before it. When the clock
runs faster than the thread can follow, the due records are sent in batches of at most
``_BATCH_RECORDS`` (one ``wrench_fn()`` call per batch), each only once the previous batch has
left the twin's buffer, so the pty is never flooded. When the reader falls behind, records queue
and are sent as fast as the pty takes them; no slot is skipped, so counters and slot times stay
consistent (a record sent late carries the load at its send time). Only ``drop_records`` makes
gaps.
"""

from __future__ import annotations

import os
import queue
import select
import threading
import tty
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.force.calibration import FTCalibration
from shearlab.devices.twin.ft_sensor_model import MAX_AVERAGING, FTSensorModel

_T = TypeVar("_T")

PROMPT = b"\r\n>"
EOL = b"\r\n"
STATUS_SATURATED = 0x0001
# The counter lives in the upper half of the 32-bit status word; the lower half holds error flags.
COUNTER_SHIFT = 16
COUNTER_MODULO = 1 << 16
ALL_AXES = 0x3F
# Records generated in one numpy call (about 3 KiB of lines): small enough that a stopped stream
# drains at once, large enough that a twin running 1000x faster than the wall clock keeps up with
# a 200 Hz controller.
_BATCH_RECORDS = 64
# The serving thread wakes at least this often (wall seconds) to notice a close.
_IDLE_POLL_WALL_S = 0.1
_ACTION_TIMEOUT_WALL_S = 5.0
# The controller's commands are a few characters; the bytes of a longer line are garbage, dropped.
MAX_LINE_BYTES = 256
# The log of received bytes is for conversation tests; a twin polled for hours keeps only the tail.
_RECEIVED_LOG_BYTES = 1 << 20
_THREAD_JOIN_WALL_S = 2.0


class ATISerialTwin:
    """ATI serial F/T controller on a pseudo-terminal; see the module docstring for the protocol.

    Parameters
    ----------
    model
        The sensor's measurement chain (load, noise, averaging, bias, record counter).
    clock
        Virtual clock shared with the rest of the twin.
    seed
        Seed of ``inject_garbage``'s bytes.
    sample_rate_hz
        Record rate of a ``QS`` stream, per virtual second.
    link_path
        Optional path of a symbolic link kept pointing at the current pty, so that a driver finds
        the device at the same path after ``replug()`` (like a udev name for a USB adapter).
    """

    def __init__(
        self,
        model: FTSensorModel,
        clock: Clock,
        *,
        seed: int = 0,
        sample_rate_hz: float = 200.0,
        link_path: str | Path | None = None,
    ) -> None:
        if not sample_rate_hz > 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz!r}")
        self.model = model
        self.calibration: FTCalibration = model.calibration
        self._clock = clock
        self._sample_rate_hz = float(sample_rate_hz)
        self._link_path = Path(link_path) if link_path is not None else None
        self._garbage_rng = np.random.default_rng([seed, 1])

        self._axis_mask = ALL_AXES
        self._streaming = False
        self._stream_t0 = 0.0
        self._stream_slot = 0
        self._responsive = True

        self._line = bytearray()
        self._out = bytearray()
        self._received = bytearray()
        self._master: int | None = None
        self._slave: int | None = None
        self._pts_path: str | None = None
        self._actions: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = queue.SimpleQueue()
        # Self-pipe that wakes the serving thread out of select() for an action or a close.
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- lifecycle

    @property
    def device_path(self) -> str:
        """Path that ``serial.Serial(device_path)`` opens: ``link_path`` if given, else the pty.

        After ``unplug()`` it names the vanished device, which then fails to open.
        """
        if self._pts_path is None:
            raise RuntimeError("the twin has no pty yet: call start()")
        return str(self._link_path) if self._link_path is not None else self._pts_path

    def start(self) -> None:
        """Open the pty and start answering on it."""
        if self._thread is not None:
            return
        self._wake_r, self._wake_w = os.pipe()
        self._open_pty()
        self._thread = threading.Thread(
            target=self._serve, name=f"ati-twin-{self.calibration.model}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the pty; safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self._wake()
        if self._thread is not None:
            self._thread.join(_THREAD_JOIN_WALL_S)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)

    def __enter__(self) -> ATISerialTwin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ fault injection

    def unplug(self) -> None:
        """Pull the cable: close the pty, so an open port fails with an I/O error, not silence."""
        self._call(self._unplug)

    def replug(self) -> str:
        """Plug back in on a fresh pty; controller settings survive. Returns the new ``device_path``."""
        return self._call(self._replug)

    def inject_garbage(self, n_bytes: int) -> None:
        """Send ``n_bytes`` random bytes, between two records if a stream is running."""
        if n_bytes < 1:
            raise ValueError(f"n_bytes must be >= 1, got {n_bytes}")
        garbage = self._garbage_rng.integers(0, 256, size=n_bytes, dtype=np.uint8).tobytes()

        def inject() -> None:
            self._out.extend(garbage)
            # On the wire before this call returns, so a test knows which exchange it hits.
            self._flush_out()

        self._call(inject)

    def drop_records(self, n: int) -> None:
        """Lose the next ``n`` record slots: their counters are used, their records never sent."""
        self._call(lambda: self.model.drop_records(n))

    def set_responsive(self, responsive: bool) -> None:
        """``False``: stay plugged in but neither read nor send (a hung controller)."""

        def apply() -> None:
            self._responsive = responsive

        self._call(apply)

    @property
    def received(self) -> bytes:
        """The bytes the controller has received since ``start()`` (the last MiB), for conversation tests."""
        return self._call(lambda: bytes(self._received))

    # ------------------------------------------------------------------------------- serving

    def _call(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` on the serving thread, between two I/O steps, and return its result."""
        if self._thread is None or not self._thread.is_alive():
            return action()
        future: Future[object] = Future()
        self._actions.put((action, future))
        self._wake()
        return future.result(timeout=_ACTION_TIMEOUT_WALL_S)  # type: ignore[return-value]

    def _wake(self) -> None:
        if self._wake_w is None:
            return
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _run_actions(self) -> None:
        while True:
            try:
                action, future = self._actions.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(action())
            except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(exc)

    def _serve(self) -> None:
        assert self._wake_r is not None, "start() opens the wake pipe before the thread runs"
        wake = self._wake_r
        while not self._closing:
            self._run_actions()
            master = self._master
            if master is None or not self._responsive:
                select.select([wake], [], [], _IDLE_POLL_WALL_S)
                self._drain_wake()
                continue
            self._queue_due_records()
            readable, writable, _ = select.select(
                [wake, master], [master] if self._out else [], [], self._select_timeout()
            )
            if wake in readable:
                self._drain_wake()
            if master in readable:
                try:
                    self._handle_input(os.read(master, 4096))
                except BlockingIOError:
                    pass
            if master in writable:
                self._flush_out()

    def _flush_out(self) -> None:
        """Write as much of the output buffer as the pty takes now."""
        if self._master is None or not self._out:
            return
        try:
            sent = os.write(self._master, self._out)
        except BlockingIOError:
            return
        del self._out[:sent]

    def _drain_wake(self) -> None:
        try:
            if self._wake_r is not None:
                os.read(self._wake_r, 4096)
        except OSError:
            pass

    def _select_timeout(self) -> float:
        if self._streaming and not self._out:
            next_slot_at = self._stream_t0 + (self._stream_slot + 1) / self._sample_rate_hz
            return min(self._clock.wall(max(0.0, next_slot_at - self._clock.now())), _IDLE_POLL_WALL_S)
        return _IDLE_POLL_WALL_S

    def _queue_due_records(self) -> None:
        if not self._streaming or self._out:
            return
        due = int((self._clock.now() - self._stream_t0) * self._sample_rate_hz)
        n_slots = min(due - self._stream_slot, _BATCH_RECORDS)
        if n_slots <= 0:
            return
        self._stream_slot += n_slots
        skipped = self.model.skip_dropped(n_slots)
        if n_slots > skipped:
            self._out.extend(self._records(n_slots - skipped))

    def _handle_input(self, data: bytes) -> None:
        self._received.extend(data)
        del self._received[:-_RECEIVED_LOG_BYTES]
        for byte in data:
            if self._streaming:
                # Any character stops a stream and is itself discarded.
                self._streaming = False
                self._out.extend(PROMPT)
                continue
            if byte == 0x0D:
                self._execute(self._line.decode("ascii", errors="replace").strip())
                self._line.clear()
            elif byte != 0x0A and len(self._line) < MAX_LINE_BYTES:
                self._line.append(byte)

    # ------------------------------------------------------------------------------ commands

    def _execute(self, line: str) -> None:
        self._out.extend(line.encode("ascii", errors="replace") + EOL)
        words = line.upper().split()
        if not words:
            self._out.extend(b">")
            return
        command, args = words[0], words[1:]
        if command == "QS" and not args:
            self._streaming = True
            self._stream_t0 = self._clock.now()
            self._stream_slot = 0
            return
        error = self._apply(command, args)
        if error is not None:
            self._out.extend(f"ERROR: {error}".encode("ascii") + EOL)
        self._out.extend(b">")

    def _apply(self, command: str, args: list[str]) -> str | None:
        """Execute one non-streaming command; return an error text or ``None``."""
        if command == "QR" and not args:
            self.model.skip_dropped()
            self._out.extend(self._records(1))
            return None
        if command == "CD" and len(args) == 1:
            return {
                "A": None,
                "R": None,
                "B": "binary output not supported",
                "G": "raw gauge output not supported",
            }.get(args[0], "invalid argument")
        if command == "SA" and len(args) == 1:
            if not (args[0].isdigit() and 1 <= int(args[0]) <= MAX_AVERAGING):
                return "invalid argument"
            self.model.set_averaging(int(args[0]))
            return None
        if command == "SB" and not args:
            self.model.bias()
            return None
        if command == "SU" and not args:
            self.model.unbias()
            return None
        if command == "CV" and len(args) == 1:
            try:
                mask = int(args[0], 16)
            except ValueError:
                return "invalid argument"
            if not 1 <= mask <= ALL_AXES:
                return "invalid argument"
            self._axis_mask = mask
            return None
        return "unknown command"

    def _records(self, n_records: int) -> bytes:
        """The next ``n_records`` record lines, each with its own counter."""
        counts, saturated, counters = self.model.next_records(n_records)
        axes = [axis for axis in range(6) if self._axis_mask >> axis & 1]
        lines = []
        for row, flag, counter in zip(counts[:, axes].tolist(), saturated.tolist(), counters.tolist(), strict=True):
            status = ((counter % COUNTER_MODULO) << COUNTER_SHIFT) | (STATUS_SATURATED if flag else 0)
            lines.append(f"{status}," + ",".join(f"{c:6d}" for c in row) + "\r\n")
        return "".join(lines).encode("ascii")

    # ----------------------------------------------------------------------------------- pty

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._pts_path = os.ttyname(slave)
        if self._link_path is not None:
            self._link_path.unlink(missing_ok=True)
            self._link_path.symlink_to(self._pts_path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self._link_path is not None:
            self._link_path.unlink(missing_ok=True)

    def _unplug(self) -> None:
        self._close_pty()
        self._streaming = False
        self._out.clear()
        self._line.clear()

    def _replug(self) -> str:
        if self._master is None:
            self._open_pty()
        return self.device_path
