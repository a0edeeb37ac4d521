"""RTDE throughput and command latency of the UR twin, measured through the wire and ``ur_rtde``.

Starts the twin in its own process on 127.0.0.28 (speed 1) and prints:

- data packages per second a raw socket client receives at 125 Hz and 500 Hz requested, as a
  ratio to the request (the baseline: 1.0 means the twin keeps the controller's rate);
- distinct states per second that ``RTDEReceiveInterface(host, 500)`` exposes to Python polling;
- the wall time of one handshaken control command (``zeroFtSensor``: wait ready, send, wait done,
  clear) and of one ``kickWatchdog``.

Run: ``.venv/bin/python benchmarks/bench_rtde.py``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from shearlab.devices.twin import rtde_wire as wire

HOST = "127.0.0.28"
WINDOW_S = 2.0


def start_twin() -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "shearlab.devices.twin", "ur-floor", "--host", HOST, "--parent-pid", str(os.getpid())]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    if not line or not json.loads(line[0]):
        proc.kill()
        raise SystemExit("UR twin did not start")
    return proc


def raw_packets_per_second(frequency_hz: float) -> float:
    with socket.create_connection((HOST, 30004), timeout=5) as sock:
        names = b"timestamp,actual_TCP_pose,actual_TCP_speed,robot_status_bits,safety_status_bits"
        sock.sendall(wire.frame(wire.SETUP_OUTPUTS, struct.pack(">d", frequency_hz) + names))
        wire.recv_message(sock)
        sock.sendall(wire.frame(wire.START))
        wire.recv_message(sock)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < WINDOW_S:
            message = wire.recv_message(sock)
            if message is not None and message[0] == wire.DATA_PACKAGE:
                count += 1
        return count / (time.perf_counter() - start)


def ur_rtde_states_per_second(frequency_hz: float) -> float:
    import rtde_receive

    receive = rtde_receive.RTDEReceiveInterface(HOST, frequency_hz)
    seen, last, start = 0, None, time.perf_counter()
    while time.perf_counter() - start < WINDOW_S:
        stamp = receive.getTimestamp()
        if stamp != last:
            seen, last = seen + 1, stamp
        time.sleep(2e-4)
    rate = seen / (time.perf_counter() - start)
    receive.disconnect()
    return rate


def command_latency_ms(repeats: int = 50) -> tuple[float, float]:
    import rtde_control

    control = rtde_control.RTDEControlInterface(HOST)
    start = time.perf_counter()
    for _ in range(repeats):
        control.zeroFtSensor()
    handshake_ms = (time.perf_counter() - start) / repeats * 1e3
    start = time.perf_counter()
    for _ in range(repeats):
        control.kickWatchdog()
    kick_ms = (time.perf_counter() - start) / repeats * 1e3
    control.stopScript()
    control.disconnect()
    return handshake_ms, kick_ms


def main() -> None:
    proc = start_twin()
    try:
        for requested in (125.0, 500.0):
            rate = raw_packets_per_second(requested)
            print(f"raw socket, {requested:.0f} Hz requested: {rate:7.1f} packets/s  (ratio {rate / requested:.3f})")
        rate = ur_rtde_states_per_second(500.0)
        print(f"ur_rtde RTDEReceiveInterface, 500 Hz requested: {rate:7.1f} new states/s seen by Python (ratio {rate / 500:.3f})")
        handshake_ms, kick_ms = command_latency_ms()
        print(f"zeroFtSensor (ready/send/done/clear handshake): {handshake_ms:6.2f} ms per command")
        print(f"kickWatchdog (no handshake):                    {kick_ms:6.2f} ms per call")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
