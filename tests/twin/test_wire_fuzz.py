"""Malformed, oversized, slow and flooding traffic at every port of a running twin: it stays within fixed
memory and thread bounds, closes the offenders, and its real clients (the drivers) are still served."""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from shearlab.devices.rig_check import check_rig
from shearlab.devices.scanner.bridge_wire import MAGIC, PREFIX
from shearlab.devices.twin import rtde_wire as wire
from shearlab.devices.twin.guard import MAX_CONNECTIONS, PARTIAL_MESSAGE_S
from shearlab.devices.twin.serve import CONTROL_PORT, GCS_PORT, SCANNER_PORT
from shearlab.devices.twin.ur_controller import DASHBOARD_PORT, RTDE_PORT, SCRIPT_PORT
from shearlab.devices.twin_client import TwinControl, TwinProcess
from shearlab.protocols.rig import load_rig

pytestmark = pytest.mark.slow

PORTS = {"dashboard": DASHBOARD_PORT, "script": SCRIPT_PORT, "rtde": RTDE_PORT, "gcs": GCS_PORT, "control": CONTROL_PORT,
         "scanner": SCANNER_PORT}
# What the twin may grow by, whatever it is sent: a 50 MB line must not become a 50 MB buffer.
RSS_GROWTH_BOUND_MIB = 64
# Threads: one per connection within each port's bound, one package sender per RTDE link, a few spare.
THREAD_BOUND = MAX_CONNECTIONS * (len(PORTS) + 1) + 8


def _prefix(msg_type: int, header_len: int, payload_len: int = 0, magic: bytes = MAGIC, version: int = 1) -> bytes:
    return PREFIX.pack(magic, version, msg_type, 7, header_len, payload_len)


def _rtde(kind: str, payload: bytes = b"") -> bytes:
    return wire.frame(ord(kind), payload)


# Malformed messages per port: each sent on a fresh connection, whatever the twin answers.
MALFORMED: dict[str, list[bytes]] = {
    "dashboard": [b"\xff\xfe\x00garbage\n", b"\x00" * 100 + b"\n", b"popup " + b"x" * 900 + b"\n", b"unlock protective stop\n",
                  b"token nope\n", b"quit quit quit\n", b"\n\n\n\n", b"load /etc/passwd\n"],
    "script": [b"no program here\n", b"def rtde_control():\nend\n", b"def x():\n\x00\xff\n", b"end\nend\nend\n",
               b"def def def \n", bytes(range(256)), b"def " * 1000],
    "rtde": [b"\x00\x01V", _rtde("V"), _rtde("Z", b"xx"), _rtde("O", struct.pack(">d", math.nan) + b"timestamp"),
             _rtde("O", struct.pack(">d", 125.0) + b"x," * 30000), _rtde("U", b"\x09" + bytes(8)),
             _rtde("I", b"input_int_register_0") + _rtde("U", b"\x01\x00"), _rtde("S") + _rtde("S") + _rtde("P") * 3,
             b"\xff\xff\x55" + bytes(100)],
    "gcs": [b"FOO?\n", b"MOV X nan\n", b"MOV X 1e308\n", b"\x05" * 10, b"SVO\n", b"\x81\x8d\x8f\x90\x9d\n", b"MOV X 1 Y\n",
            b"HLT Q\n", b"ERR?\n" * 50],
    "control": [b"not json\n", b'{"op": 1}\n', b'{"op": "fault", "device": "robot", "kind": "nope"}\n',
                b'{"op": "place_cylinder", "cylinder": {}}\n', b'{"op": "state", "x": 1}\n', b"[]\n", b'{"op": "exec"}\n',
                b'{"op": "fault", "device": "scanner", "kind": "fault", "message": "' + b"m" * 20000 + b'"}\n'],
    "scanner": [b"GET / HTTP/1.1\r\n\r\n", _prefix(1, 0), _prefix(1, 10**9), _prefix(1, 2, 2**40) + b"{}",
                _prefix(0x7F, 2) + b"{}", _prefix(1, 8) + b"not json", _prefix(1, 2, magic=b"XXXX") + b"{}",
                _prefix(1, 2, version=9) + b"{}", _prefix(4, 2) + b"{}" + _prefix(4, 2)],
}
# Oversized input per port: a line or message far beyond the protocol's limit, sent until the twin hangs up.
OVERSIZED: dict[str, tuple[bytes, bytes]] = {
    "dashboard": (b"", b"A" * 65536),
    "script": (b"def attack():\n", b"  x = 1\n" * 8192),
    "gcs": (b"", b"B" * 65536),
    "control": (b'{"op": "ping", "pad": "', b"C" * 65536),
}
# A message begun and never finished, per port.
PARTIAL: dict[str, bytes] = {"dashboard": b"PolyscopeVer", "script": b"def half():\n  x = 1\n", "rtde": b"\x00\x10V\x00",
                             "gcs": b"POS", "control": b'{"op": "pi', "scanner": _prefix(1, 100) + b'{"a":'}


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` (kB) and ``Threads`` of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"rss_kb": int(fields["VmRSS"].split()[0]), "threads": int(fields["Threads"])}


def connect(host: str, port: int, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout_s)


def hung_up(sock: socket.socket, within_s: float) -> bool:
    """Whether the twin closed ``sock`` within ``within_s`` (what it sends meanwhile is drained)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def send_until_hung_up(sock: socket.socket, head: bytes, chunk: bytes, max_bytes: int) -> int:
    """Send ``head`` then ``chunk`` repeatedly until the twin hangs up or ``max_bytes`` are sent; bytes sent."""
    sent = 0
    sock.settimeout(5.0)
    try:
        sock.sendall(head)
        while sent < max_bytes:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        return sent
    return sent


def drain(sock: socket.socket) -> None:
    """Read and drop whatever the twin sends until the connection ends."""
    while True:
        try:
            if not sock.recv(1 << 20):
                return
        except TimeoutError:
            continue
        except OSError:
            return


@pytest.fixture
def twin(twin_factory: Callable[..., TwinProcess]) -> Iterator[TwinProcess]:
    yield twin_factory(speed=10.0)


def served(twin: TwinProcess, tmp_path: Path) -> None:
    """Every driver connects and reads its device's status; the control endpoint answers."""
    rig = load_rig(Path(__file__).resolve().parents[2] / "rigs" / "twin.toml")
    rows = check_rig(rig, twin.endpoints)
    assert not [row for row in rows if row.error is not None], rows
    with TwinControl(twin.endpoints.control) as control:
        control.ping()


def test_the_twin_survives_hostile_traffic_on_every_port_within_bounds(twin: TwinProcess, tmp_path: Path) -> None:
    host, pid = twin.host, twin.process.pid
    served(twin, tmp_path)
    baseline = proc_status(pid)
    with ExitStack() as slow_clients:
        # Slow clients: a message begun and never finished; checked at the end, the rest runs meanwhile.
        slow = {}
        for port_name, begun in PARTIAL.items():
            sock = slow_clients.enter_context(closing(connect(host, PORTS[port_name])))
            sock.sendall(begun)
            slow[port_name] = sock
        slow_since = time.monotonic()

        # Malformed messages: each on its own connection; the twin answers or hangs up, and lives.
        for port_name, messages in MALFORMED.items():
            for message in messages:
                with closing(connect(host, PORTS[port_name])) as sock:
                    sock.sendall(message)
                    hung_up(sock, 0.05)

        # Oversized lines and programs: the twin hangs up long before 50 MB have gone.
        for port_name, (head, chunk) in OVERSIZED.items():
            with closing(connect(host, PORTS[port_name])) as sock:
                started = time.monotonic()
                sent = send_until_hung_up(sock, head, chunk, 50 * 2**20)
                assert sent < 8 * 2**20, f"{port_name}: {sent} bytes accepted"
                assert time.monotonic() - started < 10, port_name
        with closing(connect(host, RTDE_PORT)) as sock:  # recipe after recipe, past the 255 a byte can number
            setup = _rtde("I", b"input_int_register_0")
            assert send_until_hung_up(sock, b"", setup * 64, 50 * 2**20) < 8 * 2**20
        status = proc_status(pid)
        assert status["rss_kb"] - baseline["rss_kb"] < RSS_GROWTH_BOUND_MIB * 1024, (baseline, status)

        # A connection flood: past the bound per port, newcomers are turned away; threads stay bounded.
        with ExitStack() as stack:
            flood = [stack.enter_context(closing(connect(host, port))) for port in PORTS.values() for _ in range(3 * MAX_CONNECTIONS)]
            time.sleep(0.5)
            status = proc_status(pid)
            assert status["threads"] - baseline["threads"] <= THREAD_BOUND, (baseline, status)
            turned_away = sum(hung_up(sock, 0.01) for sock in flood)
            assert turned_away >= len(flood) - len(PORTS) * MAX_CONNECTIONS

        # A CPU flood (valid, cheap GCS queries as fast as the socket takes them, replies drained) is cut off.
        with closing(connect(host, GCS_PORT)) as sock:
            threading.Thread(target=drain, args=(sock,), daemon=True).start()
            started = time.monotonic()
            sent = send_until_hung_up(sock, b"", b"\x05" * 65536, 2**31)
            assert sent < 2**31 and time.monotonic() - started < 60

        served(twin, tmp_path)  # the slow clients hold their connections meanwhile
        time.sleep(max(0.0, PARTIAL_MESSAGE_S + 1.5 - (time.monotonic() - slow_since)))
        still_open = [name for name, sock in slow.items() if not hung_up(sock, 1.0)]
        assert not still_open

    served(twin, tmp_path)
    status = proc_status(pid)
    assert status["rss_kb"] - baseline["rss_kb"] < RSS_GROWTH_BOUND_MIB * 1024, (baseline, status)
    assert status["threads"] <= baseline["threads"] + 4, (baseline, status)
    assert twin.process.poll() is None


def test_every_port_gets_malformed_and_slow_traffic() -> None:
    assert set(MALFORMED) == set(PARTIAL) == set(PORTS)
    assert sum(len(m) for m in MALFORMED.values()) >= 45
