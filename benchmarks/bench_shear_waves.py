"""Shear-wave solver timings on the full sequence (35 frames x 250 x 600), one process.

Prints, per case: wall time, the FD/exact ratio on the same homogeneous gel (the exact solver is
the baseline), the FD-vs-exact relative L2 error in the ROI, and peak traced memory.
Run: ``.venv/bin/python benchmarks/bench_shear_waves.py`` (set OMP/OPENBLAS threads to 1 for one core).
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from shearlab.devices.twin.physics import (
    homogeneous_medium,
    image_plane_medium,
    irregular_inclusion,
    simulate_displacement,
)
from shearlab.protocols.phantoms import Block, Inclusion, cast_batch
from shearlab.protocols.sequences import PushSpec, SequenceSpec


def _timed(run: Callable[[], np.ndarray], repeats: int = 1) -> tuple[np.ndarray, float, float]:
    """Result, best wall time (s) and peak traced memory (MiB) of ``run``."""
    best = float("inf")
    result = np.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    run()
    peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, best, peak_mib


def main() -> None:
    sequence = SequenceSpec(push=PushSpec(lateral_mm=-8.0))
    grid = sequence.grid
    rows, cols = grid.roi_slices()
    print(f"{'case':34s} {'time_s':>8s} {'fd/exact':>9s} {'roi_rel_l2':>11s} {'peak_MiB':>9s}")
    for concentration in (5.0, 10.0, 17.5):
        medium = homogeneous_medium(cast_batch("bench", concentration), grid)
        exact, t_exact, m_exact = _timed(lambda: simulate_displacement(medium, sequence, method="exact"), repeats=3)
        fd, t_fd, m_fd = _timed(lambda: simulate_displacement(medium, sequence, method="fd"))
        error = np.linalg.norm(fd[:, rows, cols] - exact[:, rows, cols]) / np.linalg.norm(exact[:, rows, cols])
        print(f"{f'exact, homogeneous {concentration} %':34s} {t_exact:8.3f} {1.0:9.2f} {'':>11s} {m_exact:9.0f}")
        print(f"{f'fd, homogeneous {concentration} %':34s} {t_fd:8.3f} {t_fd / t_exact:9.2f} {error:11.2e} {m_fd:9.0f}")

    truths = {name: cast_batch(name, c) for name, c in (("bg", 7.5), ("inc", 15.0), ("heart", 12.5))}
    phantoms = {
        "fd, 15 % r=10 mm in 7.5 %": (Inclusion(batch_id="inc", centre_lateral_mm=4.0, radius_mm=10.0),),
        "fd, heart-like blob in 7.5 %": (irregular_inclusion("heart", concentration_pct=12.5, radius_mm=6.0),),
    }
    for name, inclusions in phantoms.items():
        block = Block(name="bench", batch_id="bg", concentration_pct=7.5, inclusions=inclusions)
        medium = image_plane_medium(block, truths, 0.0, 0.0, grid)
        _, t_fd, m_fd = _timed(lambda: simulate_displacement(medium, sequence))
        print(f"{name:34s} {t_fd:8.3f} {'':>9s} {'':>11s} {m_fd:9.0f}")
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {max_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
