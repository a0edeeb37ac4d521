"""Flow throughput against the twin: sequences per minute of wall time, the share of wall time spent
outside the physics (orchestration, devices, Loupas, I/O), one 8-cylinder calibration batch, and a
campaign fanned out over 1, 2, ... twins (each on its own loopback address, ``--positions`` each).

Run: ``.venv/bin/python benchmarks/bench_flows.py [--positions 2] [--speed 10] [--calibration-speed 200]
[--twins 1,2] [--only campaign|calibration|fanout]``. Prefect's local API is started before anything is
timed.
The physics share is measured by re-running the twin's own simulation of the same sequences in this
process (same code, same sizes), since the twin's process cannot be timed from outside.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parents[1]


def _rig(folder: Path, host: str, speed: float, name: str) -> Path:
    text = (ROOT / "rigs" / "twin.toml").read_text().replace('host = "127.0.0.5"', f'host = "{host}"')
    text = text.replace("speed = 10.0", f"speed = {speed}").replace('name = "twin"', f'name = "{name}"')
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def _plan(folder: Path, positions: int, name: str) -> Path:
    from shearlab.datasets.records import CalibrationFit
    from shearlab.orchestrator.calibration_records import save_record

    cal = folder / "cal"
    save_record(cal, CalibrationFit(calibration_id="cal-bench", batch_id="B1-10.0", concentration_pct=10.0,
                                    e_kpa=54.0, ci95_kpa=(53.0, 55.0), cylinders=8, sample_sd_kpa=1.2, n_points=100, r2=0.999))
    plan = folder / f"{name}.toml"
    plan.write_text(f'name = "{name}"\nn_positions = {positions}\nout_dir = "{folder / "sessions"}"\n'
                    f'calibration_dir = "{cal}"\n\n[[blocks]]\nname = "block_10p0"\nbatch_id = "B1-10.0"\n'
                    'concentration_pct = 10.0\nx_mm = 55.0\ny_mm = 200.0\n')
    return plan


def fanout(folder: Path, positions: int, speed: float, twins: list[int]) -> None:
    from shearlab.orchestrator.flows.acquisition import fanout_campaign_flow

    rates = {}
    for n in twins:
        rigs = [_rig(folder, f"127.0.0.{100 + 10 * n + k}", speed, f"fan{n}-twin{k}") for k in range(n)]
        started = time.perf_counter()
        summary = fanout_campaign_flow(rigs=rigs, plan=_plan(folder, positions * n, f"fan{n}"))
        wall = time.perf_counter() - started
        rates[n] = 60 * (summary.written + summary.failed) / wall
        print(f"fan-out over {n} twin(s): {summary.written + summary.failed} sequences in {wall:.1f} s: "
              f"{rates[n]:.1f} sequences/min ({rates[n] / rates[twins[0]]:.2f}x {twins[0]} twin) | "
              f"load {os.getloadavg()[0]:.1f}")


def campaign(folder: Path, positions: int, speed: float) -> None:
    from shearlab.orchestrator.flows.acquisition import campaign_flow

    plan = _plan(folder, positions, "bench")
    rig = _rig(folder, "127.0.0.91", speed, "bench-swei")
    started = time.perf_counter()
    summary = campaign_flow(rig=rig, plan=plan)
    wall = time.perf_counter() - started
    n = summary.written + summary.failed

    from shearlab.devices.twin.scanner_acquisition import TwinScannerBackend
    from shearlab.devices.twin.world import World
    from shearlab.devices.twin.world_config import load_world
    from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, PushSpec, SequenceSpec

    # The same shots in process: the twin scanner's physics with the default world's realism.
    world = World(load_world())
    block = next(b for b in world.config.blocks if b.batch_id == "B1-10.0")
    pose = np.array([block.x_mm * 1e-3, block.y_mm * 1e-3, (block.size_mm[2] - 0.2) * 1e-3, np.pi, 0.0, 0.0])
    backend = TwinScannerBackend(world, robot_pose=lambda: pose)
    started = time.perf_counter()
    for k in range(n):
        backend.acquire(SequenceSpec(push=PushSpec(lateral_mm=PAPER_PUSH_LATERAL_MM[k % 7])), True)
    physics = time.perf_counter() - started
    print(f"campaign: {n} sequences in {wall:.1f} s wall (twin speed {speed:g}): "
          f"{60 * n / wall:.1f} sequences/min; physics {physics:.1f} s = {physics / wall:.0%} of wall, "
          f"outside physics {1 - physics / wall:.0%}")


def calibration(folder: Path, speed: float) -> None:
    from shearlab.orchestrator.flows.calibration import calibration_flow
    from shearlab.protocols.phantoms import cast_batch

    plan = folder / "calibration.toml"
    plan.write_text(f'name = "bench"\nout_dir = "{folder / "cal8"}"\n\n[[batches]]\nbatch_id = "BENCH-12.5"\n'
                    "concentration_pct = 12.5\ncylinders = 8\n")
    rig = _rig(folder, "127.0.0.92", speed, "bench-indentation")
    started = time.perf_counter()
    (record,) = calibration_flow(rig=rig, plan=plan)
    wall = time.perf_counter() - started
    truth = cast_batch("BENCH-12.5", 12.5).e_static_pa / 1e3
    print(f"calibration: 8 cylinders in {wall:.1f} s wall at twin speed {speed:g}: E = {record.e_kpa:.2f} kPa "
          f"(truth {truth:.2f}, error {100 * (record.e_kpa / truth - 1):+.2f} %), {record.n_points} points in the fit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=2)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--calibration-speed", type=float, default=200.0)
    parser.add_argument("--twins", default="1,2", help="numbers of twins to fan a campaign out over")
    parser.add_argument("--only", choices=("campaign", "calibration", "fanout"))
    args = parser.parse_args()
    from prefect import flow

    flow(lambda: None, name="warm-up")()  # Prefect's local API starts here, not inside a timed run
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "campaign"):
            campaign(Path(tmp), args.positions, args.speed)
        if args.only in (None, "calibration"):
            calibration(Path(tmp), args.calibration_speed)
        if args.only in (None, "fanout"):
            fanout(Path(tmp), args.positions, args.speed, [int(n) for n in args.twins.split(",")])


if __name__ == "__main__":
    main()
