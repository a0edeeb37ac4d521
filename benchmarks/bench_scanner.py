"""Scanner bridge throughput: a full-size FIRE (36 x 250 x 600 complex64, 43.2 MB) over loopback TCP,
against a raw socket moving the same bytes in the same run.

    .venv/bin/python benchmarks/bench_scanner.py [--repeats 10]

The acquisition returns a prepared result, so the figures are protocol + transport cost only.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from dataclasses import replace

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.interfaces import ScanResult
from shearlab.devices.scanner import ScannerBridgeClient
from shearlab.devices.twin.scanner_model import DutyLimits, ScannerModel, scan_result_for
from shearlab.devices.twin.scanner_server import ScannerBridgeTwin
from shearlab.protocols.sequences import SequenceSpec

HOST = "127.0.0.46"


def _full_size_result(sequence: SequenceSpec) -> ScanResult:
    rng = np.random.default_rng(0)
    im = sequence.imaging
    shape = (1 + im.n_frames, im.n_depth, im.n_lateral)
    iq = (rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)).astype(np.complex64)
    return scan_result_for(sequence, iq, push_start_s=0.0)


def bench_fire(result: ScanResult, sequence: SequenceSpec, repeats: int) -> list[float]:
    clock = Clock()
    scanner = ScannerModel(lambda seq, push: replace(result, push_start_s=clock.now()), clock,
                           duty=DutyLimits(min_push_interval_s=0.0, max_duty_cycle=1.0))
    twin = ScannerBridgeTwin(HOST, 0, scanner)
    twin.start()
    try:
        with ScannerBridgeClient(HOST, twin.port, clock=clock) as client:
            client.configure(sequence)
            client.fire()
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                scan = client.fire()
                times.append(time.perf_counter() - started)
            assert scan.iq.tobytes() == result.iq.tobytes()
    finally:
        twin.close()
    return times


def bench_raw(iq: np.ndarray, repeats: int, *, fresh: bool) -> list[float]:
    """One request byte, then the IQ bytes sent from the array's buffer into a receive array.

    ``fresh``: a new array per transfer, as FIRE returns one (its pages are faulted in during the
    receive); otherwise one preallocated array is reused.
    """
    listener = socket.create_server((HOST, 0))
    payload = memoryview(iq.reshape(-1).view(np.uint8))

    def serve() -> None:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while conn.recv(1):
                conn.sendall(payload)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    received = np.empty_like(iq)
    view = memoryview(received.reshape(-1).view(np.uint8))
    times = []
    with socket.create_connection((HOST, listener.getsockname()[1])) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(repeats + 1):
            started = time.perf_counter()
            if fresh:
                received = np.empty_like(iq)
                view = memoryview(received.reshape(-1).view(np.uint8))
            sock.sendall(b"x")
            got = 0
            while got < view.nbytes:
                got += sock.recv_into(view[got:])
            if i:
                times.append(time.perf_counter() - started)
    listener.close()
    thread.join(5.0)
    assert received.tobytes() == iq.tobytes()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    sequence = SequenceSpec()
    result = _full_size_result(sequence)
    megabytes = result.iq.nbytes / 1e6
    fire = bench_fire(result, sequence, args.repeats)
    raw = bench_raw(result.iq, args.repeats, fresh=False)
    raw_fresh = bench_raw(result.iq, args.repeats, fresh=True)
    fire_ms, raw_ms, fresh_ms = (statistics.median(t) * 1e3 for t in (fire, raw, raw_fresh))
    print(f"full-size sequence: iq {result.iq.shape} complex64, {megabytes:.1f} MB, median of {args.repeats}")
    print(f"  FIRE round trip (bridge client <-> twin server): {fire_ms:8.1f} ms  {megabytes / fire_ms * 1e3:8.0f} MB/s")
    print(f"  raw socket, same bytes, reused buffer:           {raw_ms:8.1f} ms  {megabytes / raw_ms * 1e3:8.0f} MB/s")
    print(f"  raw socket, same bytes, new buffer each time:    {fresh_ms:8.1f} ms  {megabytes / fresh_ms * 1e3:8.0f} MB/s")
    print(f"  ratio FIRE / raw (reused buffer): {fire_ms / raw_ms:.2f}")
    print(f"  ratio FIRE / raw (new buffer):    {fire_ms / fresh_ms:.2f}")


if __name__ == "__main__":
    main()
