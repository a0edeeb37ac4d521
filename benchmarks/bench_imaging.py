"""Twin image formation and Loupas throughput on the paper's sequence (36 x 250 x 600 IQ), one core.

Prints, for one push on a homogeneous 10 % gel block:
- seconds per sequence of the shear-wave solver, IQ formation (speckle + PSF + noise) and Loupas,
  with ratios against the solver run in the same process;
- Loupas sequences/s, and against a plain ``scipy.ndimage.uniform_filter1d`` kernel sum (baseline);
- peak Python-heap memory (numpy arrays included) of each stage, via tracemalloc.

Run: ``.venv/bin/python benchmarks/bench_imaging.py [--repeats N]``. Figures are medians.
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the budget is stated

import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter1d

from shearlab.devices.twin.physics.displacement import simulate_displacement
from shearlab.devices.twin.physics.imaging import simulate_iq
from shearlab.devices.twin.physics.medium import homogeneous_medium
from shearlab.protocols.phantoms import cast_batch
from shearlab.protocols.sequences import SequenceSpec
from shearlab.protocols.signal.loupas import loupas_displacement


def _median_seconds(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds; on a shared machine CPU time is the steadier figure."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def _peak_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def _loupas_with_uniform_filter(iq: np.ndarray, *, f0_hz: float, dz_m: float, kernel: int) -> np.ndarray:
    """Baseline: the same estimator with scipy's uniform filter for the kernel sums."""

    def box(values: np.ndarray) -> np.ndarray:
        parts = uniform_filter1d(values.view(np.float32).reshape(*values.shape, 2), kernel, axis=-3, mode="nearest")
        return parts.view(np.complex64)[..., 0]

    r01 = box(np.conj(iq[0]) * iq[1:])
    lag = np.empty(iq.shape, np.complex64)
    lag[:, :-1] = np.conj(iq[:, :-1]) * iq[:, 1:]
    lag[:, -1] = lag[:, -2]
    lag = box(lag)
    four_pi_f = 4 * math.pi * f0_hz + 1540.0 / dz_m * np.angle(lag[1:] + lag[0])
    return (-1540.0 * np.angle(r01) / four_pi_f * 1e6).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats

    sequence = SequenceSpec()
    grid = sequence.grid
    medium = homogeneous_medium(cast_batch("bench", 10.0), grid)
    f0_hz = sequence.probe.centre_frequency_mhz * 1e6

    def solve() -> np.ndarray:
        return simulate_displacement(medium, sequence)

    displacement = solve()

    def image() -> np.ndarray:
        return simulate_iq(
            displacement, grid, speckle_seed=1, snr_db=30.0, focus_depth_m=10e-3, rng=np.random.default_rng(2)
        )

    iq = image()

    def track() -> np.ndarray:
        return loupas_displacement(iq, centre_frequency_hz=f0_hz, depth_pixel_m=grid.dz_m)

    def track_baseline() -> np.ndarray:
        return _loupas_with_uniform_filter(iq, f0_hz=f0_hz, dz_m=grid.dz_m, kernel=5)

    np.testing.assert_allclose(track(), track_baseline(), atol=1e-2)

    t_solve, c_solve = _median_seconds(solve, repeats)
    t_image, c_image = _median_seconds(image, repeats)
    t_track, c_track = _median_seconds(track, repeats)
    t_base, c_base = _median_seconds(track_baseline, repeats)
    print(f"IQ volume {iq.shape} {iq.dtype}, displacement {displacement.shape}, repeats {repeats}")
    print("                            wall ms   CPU ms   CPU ratio")
    print(f"shear-wave solver (exact)  {t_solve * 1e3:8.1f} {c_solve * 1e3:8.1f}   1.00x")
    print(f"IQ formation + noise       {t_image * 1e3:8.1f} {c_image * 1e3:8.1f}   {c_image / c_solve:.2f}x solver")
    print(f"Loupas                     {t_track * 1e3:8.1f} {c_track * 1e3:8.1f}   {c_track / c_solve:.2f}x solver")
    print(f"Loupas, uniform_filter1d   {t_base * 1e3:8.1f} {c_base * 1e3:8.1f}   slab sums {c_base / c_track:.2f}x faster")
    print(f"Loupas throughput: {1 / t_track:.1f} sequences/s wall, {1 / c_track:.1f} per CPU second")
    print(f"peak heap: solver {_peak_mib(solve):.0f} MiB, IQ formation {_peak_mib(image):.0f} MiB, "
          f"Loupas {_peak_mib(track):.0f} MiB (IQ volume itself {iq.nbytes / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
