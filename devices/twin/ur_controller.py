"""The UR3 controller twin: RTDE (30004), dashboard (29999) and script (30003) servers.

It satisfies the unmodified ``ur_rtde`` bindings. ``RTDEReceiveInterface`` needs only RTDE;
``RTDEControlInterface`` also uploads its URScript on 30003 and then drives it through RTDE registers.
The twin does not interpret URScript: it recognises the uploaded ``rtde_control`` program and emulates
that program's main loop on the same registers:

- ``input_int_register_0`` is the command id; int registers 1-7 and double registers 0-17 carry the
  arguments; ``output_int_register_0`` is the script state (1 ready, 2 done with the command).
- "Realtime" commands (speedL, servo, force mode) are processed at every update and leave the state
  at ready; any other command runs once (blocking ones until the arm is still), then the state goes
  to done until the client writes command 0 again.
- Moves and stops whose script branch reads ``input_int_register_1`` run asynchronously when it is 1
  (``moveL(..., True)``, ``stopL(a, True)``): the handshake completes at once and the operation runs on
  in the robot model, as the script's move and stop threads do. ``output_int_register_2`` reports it
  as the script's ``write_async_progress_register`` does: bit 15 set while an operation runs (bits 0-14
  its progress, 0 for a single move), bits 16-22 a write counter, bits 24-30 the operation id, which
  changes at every start. A new move or stop ends the running operation first. A protective stop ends
  the program, leaving the register as it was: clients must watch the safety status, not only it.
- Any RTDE data package that writes ``input_int_register_0`` kicks the watchdog, as the controller's
  ``rtde_set_watchdog("input_int_register_0", f, ...)`` counts register updates. Here a missed
  watchdog latches a protective stop (the rig's safe state), and a protective stop ends the program.

Several twins run at once on different loopback addresses: the ports are fixed by the protocol, so
each server binds its own host only. Every port keeps the twin's bounds (``guard``): connections,
line, script and message sizes, time to finish a message, CPU per connection. When the twin serves a
network it has a token, and the dashboard unlocks a protective stop only for a connection that sent
``token <secret>`` first (a twin extension: PolyScope has no such line). Data packages are sent at the requested rate in wall time (the
transport is real); their content is the model's state at the virtual time of sending.

Command ids (``ur_rtde`` 1.6.5 ``RTDE::RobotCommand::Type``): moveL 3, forceMode 6,
forceModeStop 7, zeroFtSensor 8, speedL 10, speedStop 15, servoStop 16, protectiveStop 31, stopL 33,
setWatchdog 35, isSteady 47, moveUntilContact 51, stopScript 255; kickWatchdog writes command 0.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.twin import rtde_wire as wire
from shearlab.devices.twin.guard import PARTIAL_MESSAGE_S, ConnectionSlots, CpuBudget, LineReader, Offender, token_matches
from shearlab.devices.twin.robot_model import RobotModel

RTDE_PORT = 30004
DASHBOARD_PORT = 29999
SCRIPT_PORT = 30003

# A CB3 UR3 (the lab's arm): PolyScope 3.15 supports every RTDE variable ur_rtde 1.6 asks for and,
# being < 5.6, needs no remote-control check.
CONTROLLER_VERSION = (3, 15, 7, 106331)
POLYSCOPE_VERSION = "URSoftware 3.15.7.106331 (Mar 23 2023)"
SERIAL_NUMBER = "2018300001"
ROBOT_MODEL = "UR3"
# UR e-Series stream at most 500 Hz; CB3 at 125 Hz. The twin honours requests up to 500 Hz.
MAX_FREQUENCY_HZ = 500.0
# PolyScope refuses to unlock a protective stop earlier than 5 s after it happened.
UNLOCK_DELAY_S = 5.0
# Dashboard commands are a few words; PolyScope's popup text is the longest at a few hundred characters.
DASHBOARD_LINE_BYTES = 1024
# ur_rtde's rtde_control.script is ~60 KB; a program ten times that is not one the twin runs.
MAX_SCRIPT_BYTES = 1 << 20
# Recipe ids are one byte.
MAX_RECIPES = 255
# ur_rtde sends the whole program at once; one begun and not finished in this long is a stalled peer.
PARTIAL_SCRIPT_S = PARTIAL_MESSAGE_S
# Joint angles reported while there is no joint kinematics: a plausible probe-down configuration.
_JOINTS_RAD = (0.0, -1.57, 1.57, -1.57, -1.57, 0.0)

CMD_NONE = 0
CMD_MOVEJ_IK = 2
CMD_MOVEL = 3
CMD_SPEEDL = 10
CMD_SPEED_STOP = 15
CMD_PROTECTIVE_STOP = 31
CMD_STOPL = 33
CMD_STOPJ = 34
CMD_SET_WATCHDOG = 35
CMD_IS_STEADY = 47
CMD_STOP_SCRIPT = 255
# Commands the rtde_control script processes on every loop without the done handshake.
_REALTIME = frozenset({6, 9, 10, 11, 24, 25, 26, 27, 38, 58, 66, 67, 68, 69, 70, 71})
_BLOCKING = frozenset({CMD_MOVEJ_IK, CMD_MOVEL, CMD_SPEED_STOP, CMD_STOPL, CMD_STOPJ, 7})
# Commands whose script branch reads input_int_register_1 as "asynchronous" (of those the twin runs);
# any other command leaves a stale 1 there from an earlier asynchronous call unread.
_ASYNC_CAPABLE = frozenset({CMD_MOVEJ_IK, CMD_MOVEL, CMD_STOPL, CMD_STOPJ})
# The script's async progress register and its bit fields.
ASYNC_PROGRESS_REGISTER = 2
_ASYNC_RUNNING = 1 << 15
_ASYNC_PROGRESS_MAX = (1 << 15) - 1
_ASYNC_COUNT_SHIFT = 16
_ASYNC_ID_SHIFT = 24
_ASYNC_FIELD_SIZE = 128  # both the write counter and the operation id are 7 bits wide
_ASYNC_MOVE = "move"
_ASYNC_STOP = "stop"
SCRIPT_READY = 1
SCRIPT_DONE = 2
_PROGRAM_END = re.compile(rb"^end\s*$", re.MULTILINE)

# robot_status_bits: power on | program running; safety_status_bits: normal mode | protective stop.
_STATUS_POWER_ON = 1 << 0
_STATUS_PROGRAM_RUNNING = 1 << 1
_SAFETY_NORMAL = 1 << 0
_SAFETY_PROTECTIVE_STOP = 1 << 2
_ROBOT_MODE_RUNNING = 7
_SAFETY_MODE_NORMAL = 1
_SAFETY_MODE_PROTECTIVE = 3
_RUNTIME_STOPPED = 1
_RUNTIME_PLAYING = 2


@dataclass
class _ScriptState:
    """Registers and the emulated rtde_control program, guarded by the controller's lock."""

    in_int: dict[int, int] = field(default_factory=dict)
    in_double: dict[int, float] = field(default_factory=dict)
    out_int: dict[int, int] = field(default_factory=dict)
    out_double: dict[int, float] = field(default_factory=dict)
    running: bool = False
    executing: bool = False
    blocking: int | None = None
    input_seq: int = 0
    seen_seq: int = -1
    async_op: str | None = None
    async_wr_count: int = 0
    async_op_id: int = 0


class URControllerTwin:
    """RTDE, dashboard and script servers for one :class:`RobotModel` on ``host``."""

    def __init__(self, host: str, robot: RobotModel, clock: Clock, *, token: str | None = None) -> None:
        self.host = host
        self.token = token
        self.robot = robot
        self.clock = clock
        # Command ids the emulated program executed, newest last (bounded: speedL repeats at 125 Hz).
        self.commands: deque[int] = deque(maxlen=10_000)
        self.last_script = ""
        self._state = _ScriptState()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._stream_paused_until = 0.0
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind 29999, 30003 and 30004 on ``host``; returns once all accept connections."""
        for port, handler in (
            (DASHBOARD_PORT, self._serve_dashboard),
            (SCRIPT_PORT, self._serve_script),
            (RTDE_PORT, self._serve_rtde),
        ):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, port))
            listener.listen(8)
            self._listeners.append(listener)
            self._spawn(self._accept_loop, listener, handler, ConnectionSlots(), name=f"ur-twin-accept-{port}")
        self._spawn(self._script_loop, name="ur-twin-script")

    def close(self) -> None:
        """Stop serving: close listeners and every connection, join the threads."""
        self._closing.set()
        with self._wake:
            self._wake.notify_all()
        for listener in self._listeners:
            _close_quietly(listener)
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            _close_quietly(conn)
        with self._conn_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=2.0)

    def __enter__(self) -> URControllerTwin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fault injection and inspection -----------------------------------------------------------

    def drop_rtde_stream(self, duration_s: float) -> None:
        """Send no RTDE data packages for ``duration_s`` virtual seconds (connections stay open)."""
        self._stream_paused_until = time.monotonic() + self.clock.wall(duration_s)

    @property
    def program_running(self) -> bool:
        with self._lock:
            return self._state.running

    # -- plumbing --------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: object, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        with self._conn_lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    def _accept_loop(self, listener: socket.socket, handler: Callable[[socket.socket, CpuBudget], None],
                     slots: ConnectionSlots) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if not slots.take():
                _close_quietly(conn)  # at the bound: the newcomer waits for a free slot
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._conn_lock:
                self._connections.add(conn)
            self._spawn(self._handle, conn, handler, slots, name=f"ur-twin-{handler.__name__}")

    def _handle(self, conn: socket.socket, handler: Callable[[socket.socket, CpuBudget], None], slots: ConnectionSlots) -> None:
        try:
            handler(conn, CpuBudget())
        except (OSError, ValueError, struct.error, Offender):
            pass  # a client that vanishes, sends garbage or breaks a bound loses its connection, nothing else
        finally:
            with self._conn_lock:
                self._connections.discard(conn)
            _close_quietly(conn)
            slots.give_back()

    # -- dashboard -------------------------------------------------------------------------------

    def _serve_dashboard(self, conn: socket.socket, budget: CpuBudget) -> None:
        conn.sendall(b"Connected: Universal Robots Dashboard Server\n")
        reader = LineReader(conn, DASHBOARD_LINE_BYTES)
        trusted = self.token is None
        while (raw := reader.next_line()) is not None:
            with budget.metered():
                line = raw.decode("utf-8", errors="replace").strip()
                if line.startswith("token "):
                    trusted = token_matches(self.token, line.removeprefix("token ").strip())
                    reply = "Token accepted" if trusted else "Token refused"
                elif line.lower() == "unlock protective stop" and not trusted:
                    reply = "Cannot unlock protective stop: this twin serves a network; send 'token <secret>' first"
                else:
                    reply = self._dashboard_reply(line)
            conn.settimeout(PARTIAL_MESSAGE_S)
            conn.sendall(reply.encode() + b"\n")
            if line == "quit":
                return

    def _dashboard_reply(self, line: str) -> str:
        command = line.lower()
        stopped = self.robot.is_protective_stopped()
        with self._lock:
            running = self._state.running
        fixed = {
            "polyscopeversion": POLYSCOPE_VERSION,
            "get serial number": SERIAL_NUMBER,
            "get robot model": ROBOT_MODEL,
            "robotmode": "Robotmode: RUNNING",
            "safetymode": "Safetymode: " + ("PROTECTIVE_STOP" if stopped else "NORMAL"),
            "safetystatus": "Safetystatus: " + ("PROTECTIVE_STOP" if stopped else "NORMAL"),
            "is in remote control": "true",
            "power on": "Powering on",
            "power off": "Powering off",
            "brake release": "Brake releasing",
            "close popup": "closing popup",
            "close safety popup": "closing safety popup",
            "running": f"Program running: {'true' if running else 'false'}",
            "programstate": ("PLAYING rtde_control" if running else "STOPPED <unnamed>"),
            "get loaded program": "Loaded program: <unnamed>",
            "isprogramsaved": "true <unnamed>",
            "play": "Starting program",
            "pause": "Pausing program",
            "quit": "Disconnected",
            "shutdown": "Shutting down",
            "restart safety": "Restarting safety",
        }
        if command == "stop":
            self._end_program()
            return "Stopped"
        if command == "unlock protective stop":
            if stopped and self.robot.seconds_since_protective_stop() < UNLOCK_DELAY_S:
                return (
                    "Cannot unlock protective stop until 5s after occurrence. "
                    "Always inspect cause of protective stop before unlocking"
                )
            self.robot.unlock_protective_stop()
            return "Protective stop releasing"
        if command.startswith("addtolog"):
            return "Added log message"
        if command.startswith("popup"):
            return "showing popup"
        return fixed.get(command, f"could not understand: '{line}'")

    # -- script port -----------------------------------------------------------------------------

    def _serve_script(self, conn: socket.socket, budget: CpuBudget) -> None:
        buffer = bytearray()
        scanned = 0  # bytes of ``buffer`` already searched for the program's end: each byte is searched once
        while True:
            conn.settimeout(PARTIAL_SCRIPT_S if buffer else None)
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                raise Offender(f"program not finished within {PARTIAL_SCRIPT_S:.0f} s") from None
            if not chunk:
                return
            with budget.metered():
                buffer.extend(chunk)
                while (start := buffer.find(b"def ")) >= 0:
                    # A line ending "end" can straddle chunks: search again from the last line start.
                    end = _PROGRAM_END.search(buffer, max(start, buffer.rfind(b"\n", 0, scanned) + 1))
                    if end is None:
                        break
                    program = bytes(buffer[start : end.end()])
                    del buffer[: end.end()]
                    scanned = 0
                    self._load_program(program.decode("utf-8", errors="replace"))
                if buffer.find(b"def ") < 0:
                    del buffer[:-3]  # only a split "def " can matter; drop stray bytes
                elif len(buffer) > MAX_SCRIPT_BYTES:
                    raise Offender(f"program longer than {MAX_SCRIPT_BYTES} bytes")
                scanned = len(buffer)

    def _load_program(self, program: str) -> None:
        with self._wake:
            self.last_script = program
            if not program.startswith("def rtde_control"):
                return  # custom scripts are not emulated
            if self.robot.is_protective_stopped():
                return  # PolyScope will not start a program during a protective stop
            st = self._state
            st.running, st.executing, st.blocking = True, False, None
            # A fresh program starts its counters at zero and resets the progress register.
            st.async_op, st.async_wr_count, st.async_op_id = None, 0, 0
            self._write_async_progress(-1)
            st.out_int[0] = SCRIPT_READY
            st.seen_seq = -1
            self._wake.notify_all()

    def _end_program(self) -> None:
        with self._wake:
            self._state.running = False
            self._state.blocking = None
            self.robot.set_watchdog(0.0)

    def _script_loop(self) -> None:
        while not self._closing.is_set():
            with self._wake:
                # One script cycle per controller step (8 ms on a CB3), never faster than 1 ms wall.
                self._wake.wait(timeout=max(self.clock.wall(0.008), 1e-3))
                if self._state.running:
                    self._script_step()

    def _script_step(self) -> None:
        st = self._state
        # Motion first, safety second: a protective stop latched between the reads (it ends every
        # move) then shows as the stop it is, not as a move that ended.
        moving = self.robot.is_moving()
        async_ended = st.async_op is not None and not self._async_op_running(st.async_op)
        if self.robot.is_protective_stopped():
            st.running, st.blocking = False, None
            return
        if async_ended:
            self._finish_async()
        if st.blocking is not None:
            if moving:
                return
            st.blocking = None
            st.out_int[0] = SCRIPT_DONE
            st.executing = True
            return
        cmd = st.in_int.get(0, CMD_NONE)
        if cmd in _REALTIME:
            if st.seen_seq != st.input_seq:
                self._process(cmd)
            st.out_int[0] = SCRIPT_READY
        elif cmd == CMD_NONE:
            st.executing = False
            st.out_int[0] = SCRIPT_READY
        elif not st.executing:
            self._process(cmd)
            if cmd == CMD_STOP_SCRIPT:
                self._end_program()
                return
            if cmd in _BLOCKING and self.robot.is_moving() and not self._asynchronous(cmd):
                st.blocking = cmd
                return
            st.out_int[0] = SCRIPT_DONE
            st.executing = True
        st.seen_seq = st.input_seq

    def _process(self, cmd: int) -> None:
        st = self._state
        self.commands.append(cmd)
        d = [st.in_double.get(i, 0.0) for i in range(18)]
        if cmd in (CMD_MOVEL, CMD_MOVEJ_IK):
            self._finish_async()
            self.robot.move_linear(np.array(d[0:6]), speed=d[6], accel=d[7])
            if self._asynchronous(cmd):
                self._start_async(_ASYNC_MOVE)
        elif cmd == CMD_SPEEDL:
            self.robot.speed_linear(np.array(d[0:6]), accel=d[6], duration_s=0.0)
        elif cmd == CMD_SPEED_STOP:
            self.robot.speed_stop(d[0] if d[0] > 0 else 10.0)
        elif cmd in (CMD_STOPL, CMD_STOPJ):
            self._finish_async()
            self.robot.stop_linear(d[0] if d[0] > 0 else 10.0)
            if self._asynchronous(cmd):
                self._start_async(_ASYNC_STOP)
        elif cmd == CMD_SET_WATCHDOG:
            self.robot.set_watchdog(d[0])
        elif cmd == CMD_PROTECTIVE_STOP:
            self.robot.trigger_protective_stop("protective stop requested by the program")
        elif cmd == CMD_IS_STEADY:
            st.out_int[1] = 0 if self.robot.is_moving() else 1
        # zeroFtSensor, forceMode(Stop), servo and the rest are acknowledged without effect.

    def _asynchronous(self, cmd: int) -> bool:
        return cmd in _ASYNC_CAPABLE and self._state.in_int.get(1, 0) == 1

    def _async_op_running(self, op: str) -> bool:
        # The move thread ends when the move does (or is taken over); the stop thread when the arm is still.
        return self.robot.is_moving_linear() if op == _ASYNC_MOVE else self.robot.is_moving()

    def _start_async(self, op: str) -> None:
        self._state.async_op = op
        self._write_async_progress(0)

    def _finish_async(self) -> None:
        if self._state.async_op is not None:
            self._state.async_op = None
            self._write_async_progress(-1)

    def _write_async_progress(self, progress: int) -> None:
        """Write the progress register: ``progress`` >= 0 while an operation runs (0 starts one), -1 at its end."""
        st = self._state
        st.async_wr_count = (st.async_wr_count + 1) % _ASYNC_FIELD_SIZE
        if progress == 0:
            st.async_op_id = (st.async_op_id + 1) % _ASYNC_FIELD_SIZE
        value = (st.async_wr_count << _ASYNC_COUNT_SHIFT) + (st.async_op_id << _ASYNC_ID_SHIFT)
        if progress >= 0:
            value += _ASYNC_RUNNING + min(progress, _ASYNC_PROGRESS_MAX)
        st.out_int[ASYNC_PROGRESS_REGISTER] = value

    def _on_input(self, values: dict[str, object]) -> None:
        with self._wake:
            st = self._state
            for name, value in values.items():
                kind, _, index = name.rpartition("_")
                if kind == "input_int_register":
                    st.in_int[int(index)] = int(value)  # type: ignore[call-overload]
                elif kind == "input_double_register":
                    st.in_double[int(index)] = float(value)  # type: ignore[arg-type]
            if "input_int_register_0" in values:
                self.robot.kick_watchdog()
            st.input_seq += 1
            self._wake.notify_all()

    # -- RTDE ------------------------------------------------------------------------------------

    def _serve_rtde(self, conn: socket.socket, budget: CpuBudget) -> None:
        outputs: list[wire.Recipe] = []
        inputs: dict[int, wire.Recipe] = {}
        send_lock = threading.Lock()
        sender_stop: threading.Event | None = None

        def reply(message_type: int, payload: bytes) -> None:
            with send_lock:
                conn.sendall(wire.frame(message_type, payload))

        # One timeout for both directions (the package sender shares the socket): a message begun must
        # arrive in time, and a client that stops reading its packages is dropped rather than waited for.
        conn.settimeout(PARTIAL_MESSAGE_S)
        try:
            while (message := wire.recv_message(conn, wait_idle=True)) is not None:
                with budget.metered():
                    sender_stop = self._rtde_request(*message, outputs, inputs, reply, conn, send_lock, sender_stop)
        finally:
            if sender_stop is not None:
                sender_stop.set()

    def _rtde_request(self, kind: int, body: bytes, outputs: list[wire.Recipe], inputs: dict[int, wire.Recipe],
                      reply: Callable[[int, bytes], None], conn: socket.socket, send_lock: threading.Lock,
                      sender_stop: threading.Event | None) -> threading.Event | None:
        """Answer one RTDE request; returns the running package sender's stop event, if any."""
        if kind in (wire.SETUP_OUTPUTS, wire.SETUP_INPUTS) and len(outputs) + len(inputs) >= MAX_RECIPES:
            raise Offender(f"more than {MAX_RECIPES} recipes")
        if kind == wire.REQUEST_PROTOCOL_VERSION:
            (version,) = struct.unpack(">H", body[:2])
            reply(kind, bytes([version == wire.PROTOCOL_VERSION]))
        elif kind == wire.GET_URCONTROL_VERSION:
            reply(kind, struct.pack(">IIII", *CONTROLLER_VERSION))
        elif kind == wire.SETUP_OUTPUTS:
            (frequency,) = struct.unpack(">d", body[:8])
            names = wire.split_names(body[8:])
            types = tuple(map(wire.output_type, names))
            # A frequency that is no number of packages per second makes no recipe (NaN would stream flat out).
            if not 0 < frequency <= 1e6:
                types = (wire.NOT_FOUND,)
            recipe = wire.Recipe(len(outputs) + 1, names, types, frequency_hz=frequency)
            outputs.append(recipe)
            reply(kind, bytes([recipe.recipe_id if recipe.valid else 0]) + ",".join(recipe.types).encode())
        elif kind == wire.SETUP_INPUTS:
            names = wire.split_names(body)
            recipe = wire.Recipe(len(inputs) + 1, names, tuple(map(wire.input_type, names)))
            inputs[recipe.recipe_id] = recipe
            reply(kind, bytes([recipe.recipe_id if recipe.valid else 0]) + ",".join(recipe.types).encode())
        elif kind == wire.START:
            valid = [r for r in outputs if r.valid]
            # The reply must precede the first data package: ur_rtde reads exactly one message
            # after sending start and would take a data package for a refusal.
            reply(kind, bytes([bool(valid)]))
            if sender_stop is None and valid:
                sender_stop = threading.Event()
                self._spawn(self._send_packages, conn, send_lock, valid, sender_stop, name="ur-twin-rtde-out")
        elif kind == wire.PAUSE:
            if sender_stop is not None:
                sender_stop.set()
                sender_stop = None
            reply(kind, b"\x01")
        elif kind == wire.DATA_PACKAGE and body:
            received = inputs.get(body[0])
            if received is not None and received.valid:
                self._on_input(received.unpack(body[1:]))
        return sender_stop

    def _send_packages(
        self, conn: socket.socket, send_lock: threading.Lock, recipes: list[wire.Recipe], stop: threading.Event
    ) -> None:
        frequency = min(max(recipes[0].frequency_hz, 1.0), MAX_FREQUENCY_HZ)
        period = 1.0 / frequency
        names = sorted({n for r in recipes for n in r.names})
        next_send = time.monotonic()
        while not stop.is_set() and not self._closing.is_set():
            now = time.monotonic()
            if now >= self._stream_paused_until:
                values = self._output_values(names)
                payload = b"".join(wire.frame(wire.DATA_PACKAGE, r.pack(values)) for r in recipes)
                try:
                    with send_lock:
                        conn.sendall(payload)
                except OSError:
                    _close_quietly(conn)  # the reader thread sees the end and frees the connection's slot
                    return
            next_send += period
            if next_send < now - 10 * period:
                next_send = now  # fell far behind (a loaded machine): skip, do not burst
            stop.wait(max(0.0, next_send - time.monotonic()))

    def _output_values(self, names: list[str]) -> dict[str, object]:
        t, pose, velocity, stopped = self.robot.snapshot()
        with self._lock:
            st = self._state
            running = st.running
            out_int = dict(st.out_int)
            out_double = dict(st.out_double)
        known: dict[str, object] = {
            "timestamp": t,
            "actual_TCP_pose": pose,
            "target_TCP_pose": pose,
            "actual_TCP_speed": velocity,
            "target_TCP_speed": velocity,
            "actual_q": _JOINTS_RAD,
            "target_q": _JOINTS_RAD,
            "robot_mode": _ROBOT_MODE_RUNNING,
            "joint_mode": (253,) * 6,
            "safety_mode": _SAFETY_MODE_PROTECTIVE if stopped else _SAFETY_MODE_NORMAL,
            "safety_status": _SAFETY_MODE_PROTECTIVE if stopped else _SAFETY_MODE_NORMAL,
            "robot_status_bits": _STATUS_POWER_ON | (_STATUS_PROGRAM_RUNNING if running else 0),
            "safety_status_bits": _SAFETY_PROTECTIVE_STOP if stopped else _SAFETY_NORMAL,
            "runtime_state": _RUNTIME_PLAYING if running else _RUNTIME_STOPPED,
            "speed_scaling": 1.0,
            "target_speed_fraction": 1.0,
            "joint_temperatures": (30.0,) * 6,
            "actual_main_voltage": 48.0,
            "actual_robot_voltage": 48.0,
            "actual_joint_voltage": (48.0,) * 6,
            "actual_tool_accelerometer": (0.0, 0.0, -9.81),
        }
        if "actual_TCP_force" in names or "tcp_force_scalar" in names:
            force = self.robot.contact_force_n()
            known["actual_TCP_force"] = (0.0, 0.0, force, 0.0, 0.0, 0.0)
            known["tcp_force_scalar"] = force
        values: dict[str, object] = {}
        for name in names:
            if name in known:
                values[name] = known[name]
                continue
            kind, _, index = name.rpartition("_")
            if kind == "output_int_register":
                values[name] = out_int.get(int(index), 0)
            elif kind == "output_double_register":
                values[name] = out_double.get(int(index), 0.0)
            else:
                values[name] = _zero(wire.output_type(name))
        return values


def _zero(kind: str) -> object:
    if kind.startswith("VECTOR"):
        return (0.0 if kind.endswith("D") else 0,) * int(kind[6])
    if kind == "DOUBLE":
        return 0.0
    if kind == "BOOL":
        return False
    return 0


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def flat_floor(floor_z_m: float, stiffness_n_per_m: float) -> Callable[[np.ndarray], float]:
    """Contact force of a flat elastic floor at ``floor_z_m``: linear in the probe's indentation."""

    def force_n(pose: np.ndarray) -> float:
        return max(0.0, floor_z_m - float(pose[2])) * stiffness_n_per_m

    return force_n
