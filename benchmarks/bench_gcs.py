"""GCS round-trip time of the hexapod link: ``POS?`` over TCP and over the pseudo-terminal.

For each transport, with the twin's GCS server in this process (as in the tests) and in a child
process (as with ``shearlab twin serve``), it times:

- ``raw``: ``POS?`` written and its reply read on a bare socket or pty, no ``pipython``
  (the baseline of that transport);
- ``pipython``: ``GCSCommands.qPOS()``, i.e. ``POS?`` and the ``ERR?`` pipython sends after it;
- ``driver``: ``PIHexapod.position()``.

Figures are wall-clock median and p99 in microseconds, and the median as a ratio to ``raw``.
Run: ``.venv/bin/python benchmarks/bench_gcs.py [--n 1000]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import time
from collections.abc import Callable

import numpy as np
import serial
from pipython.pidevice.gcscommands import GCSCommands
from pipython.pidevice.gcsmessages import GCSMessages
from pipython.pidevice.interfaces.piserial import PISerial
from pipython.pidevice.interfaces.pisocket import PISocket

from shearlab.devices.clock import Clock
from shearlab.devices.hexapod import PIHexapod
from shearlab.devices.twin.gcs_server import GCSServer
from shearlab.devices.twin.hexapod_model import HexapodModel
from shearlab.protocols.rig import HexapodLimits

HOST = "127.0.0.36"


def _reply_complete(reply: bytes) -> bool:
    return reply.endswith(b"\n") and not reply.endswith(b" \n")


def _raw_tcp(host: str, port: int) -> tuple[Callable[[], None], Callable[[], None]]:
    sock = socket.create_connection((host, port), timeout=2.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def query() -> None:
        sock.sendall(b"POS?\n")
        reply = b""
        while not _reply_complete(reply):
            reply += sock.recv(4096)

    return query, sock.close


def _raw_pty(path: str) -> tuple[Callable[[], None], Callable[[], None]]:
    port = serial.Serial(path, 115200, timeout=2.0)

    def query() -> None:
        port.write(b"POS?\n")
        reply = b""
        while not _reply_complete(reply):
            reply += port.read(max(1, port.in_waiting))

    return query, port.close


def _time(query: Callable[[], None], n: int) -> np.ndarray:
    for _ in range(min(50, n)):
        query()
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        query()
        times[i] = time.perf_counter() - start
    return times * 1e6


def _serve_in_child(conn: multiprocessing.connection.Connection) -> None:
    model = HexapodModel(Clock())
    servers = [GCSServer.tcp(HOST, 0, model), GCSServer.pty(model)]
    for server in servers:
        server.start()
    conn.send((servers[0].port, servers[1].device_path))
    conn.recv()
    for server in servers:
        server.close()


def _measure(port: int, device_path: str, n: int, where: str) -> list[tuple[str, str, np.ndarray]]:
    limits, clock = HexapodLimits(), Clock()
    rows = []
    for transport, raw, gateway, connect in (
        (
            "tcp",
            lambda: _raw_tcp(HOST, port),
            lambda: PISocket(HOST, port),
            lambda: PIHexapod.tcp(HOST, port, limits=limits, clock=clock),
        ),
        (
            "pty",
            lambda: _raw_pty(device_path),
            lambda: PISerial(device_path, 115200),
            lambda: PIHexapod.serial(device_path, limits=limits, clock=clock),
        ),
    ):
        link = f"{where} {transport}"
        query, close = raw()
        rows.append((link, "raw POS?", _time(query, n)))
        close()
        interface = gateway()
        # The context manager drops pipython's class-wide connection callback on exit.
        with GCSCommands(GCSMessages(interface)) as gcs:
            rows.append((link, "pipython qPOS", _time(gcs.qPOS, n)))
        interface.close()
        with connect() as hexapod:
            rows.append((link, "driver position()", _time(hexapod.position, n)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="round trips per figure")
    n = parser.parse_args().n

    model = HexapodModel(Clock())
    with GCSServer.tcp(HOST, 0, model) as tcp, GCSServer.pty(model) as pty:
        tcp.start()
        pty.start()
        rows = _measure(tcp.port, pty.device_path, n, "in-process")

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve_in_child, args=(child,), daemon=True)
    process.start()
    port, device_path = parent.recv()
    try:
        rows += _measure(port, device_path, n, "child process")
    finally:
        parent.send("stop")
        process.join(10.0)

    print(f"GCS POS? round trip, {n} samples each, wall microseconds (cores: {os.cpu_count()})")
    print(f"{'server / transport':<22} {'call':<20} {'median':>9} {'p99':>9} {'x raw':>7}")
    baseline = {}
    for link, call, times in rows:
        median = float(np.median(times))
        baseline.setdefault(link, median)
        print(f"{link:<22} {call:<20} {median:9.1f} {np.percentile(times, 99):9.1f} {median / baseline[link]:7.2f}")


if __name__ == "__main__":
    main()
