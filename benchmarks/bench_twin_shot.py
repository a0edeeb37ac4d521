"""Cost of one twin shot (FIRE: shear wave + speckle IQ), the first twin against the realistic one.

For each block of the shipped world, the scanner twin's physics in process (no sockets): the same
pushes at one probe position with ``Realism.ideal()`` (homogeneous unbounded gel, exact solver; the
baseline) and with the world's realism (finite block, fluctuating gel, FD solver, echo effects). Prints
median seconds per shot and the ratio, then the whole-world mean.

Run: ``.venv/bin/python benchmarks/bench_twin_shot.py [--shots N]`` (one BLAS thread).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics
import time

import numpy as np

from shearlab.devices.twin.realism import Realism
from shearlab.devices.twin.scanner_acquisition import TwinScannerBackend
from shearlab.devices.twin.world import World
from shearlab.devices.twin.world_config import WorldConfig, load_world
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, PushSpec, SequenceSpec


def _seconds_per_shot(config: WorldConfig, block_name: str, shots: int) -> float:
    world = World(config)
    block = next(b for b in config.blocks if b.name == block_name)
    pose = np.array([block.x_mm * 1e-3, block.y_mm * 1e-3, (block.size_mm[2] - 0.2) * 1e-3, np.pi, 0.0, 0.0])
    backend = TwinScannerBackend(world, robot_pose=lambda: pose)
    backend.acquire(SequenceSpec(), True)  # draws the block's fields once, as the first shot of a campaign does
    times = []
    for k in range(shots):
        sequence = SequenceSpec(push=PushSpec(lateral_mm=PAPER_PUSH_LATERAL_MM[k % len(PAPER_PUSH_LATERAL_MM)]))
        start = time.perf_counter()
        backend.acquire(sequence, True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=7)
    args = parser.parse_args()
    real = load_world()
    ideal = real.model_copy(update={"realism": Realism.ideal()})
    print(f"{'block':22s} {'first twin s':>13s} {'realistic s':>12s} {'ratio':>6s}")
    ratios, firsts, reals = [], [], []
    for block in real.blocks:
        first = _seconds_per_shot(ideal, block.name, args.shots)
        now = _seconds_per_shot(real, block.name, args.shots)
        firsts.append(first)
        reals.append(now)
        ratios.append(now / first)
        print(f"{block.name:22s} {first:13.3f} {now:12.3f} {now / first:6.2f}")
    print(f"{'mean':22s} {np.mean(firsts):13.3f} {np.mean(reals):12.3f} {np.mean(ratios):6.2f}")


if __name__ == "__main__":
    main()
