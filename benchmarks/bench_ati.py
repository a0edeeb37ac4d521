"""Force records per second through the pty: ``QR`` polling (the baseline) against ``QS`` streaming.

The twin runs in a thread of this process (sharing the GIL with the driver, as in the tests) on a
clock 1000x faster than the wall clock, so its 200 Hz virtual rate (200 000 records per wall
second) is never the limit: the figures are what the driver, pyserial and the pty sustain.
The controller's real rate is 200 records/s; the speed factor a twin can run at while still
streaming at full rate is the streaming figure divided by 200.

Run: ``.venv/bin/python benchmarks/bench_ati.py``
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.force import ATISerialSensor
from shearlab.devices.twin.ati_controller import ATISerialTwin
from shearlab.devices.twin.ft_sensor_model import FTSensorModel

SPEED = 1000.0
POLL_RECORDS = 3000
STREAM_RECORDS = 30000
REPEATS = 3


def _load() -> tuple[np.ndarray, np.ndarray]:
    return np.array([0.0, 0.0, 1.25]), np.zeros(3)


def _best_rate(run: Callable[[], object], n_records: int) -> float:
    """Records per wall second, best of ``REPEATS`` runs."""
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        best = max(best, n_records / (time.perf_counter() - started))
    return best


def main() -> None:
    clock = Clock(speed=SPEED)
    with ATISerialTwin(FTSensorModel("nano17", _load, seed=0), clock, seed=0) as twin:
        with ATISerialSensor(twin.device_path, sensor="nano17", clock=clock, name="bench_ft") as sensor:
            sensor.configure(averaging=1)
            poll = _best_rate(lambda: [sensor.read() for _ in range(POLL_RECORDS)], POLL_RECORDS)
            stream = _best_rate(lambda: sum(1 for _ in sensor.stream(STREAM_RECORDS)), STREAM_RECORDS)
            dropped = sensor.dropped_records
    print(f"ATI serial F/T through a pty (twin in-process, clock speed {SPEED:g}), best of {REPEATS}:")
    print(f"  QR polling   {poll:10.0f} records/s  (baseline, {1e6 / poll:.0f} us per round trip)")
    print(f"  QS streaming {stream:10.0f} records/s  = {stream / poll:.1f}x polling")
    print(f"  streaming keeps the 200 Hz controller rate up to clock speed ~{stream / 200:.0f}x")
    print(f"  dropped records: {dropped}")


if __name__ == "__main__":
    main()
