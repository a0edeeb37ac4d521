"""``shearlab demo --estimate``: the expected wall time of each stage of a demo scale on this machine,
printed before anything runs.

Each stage is an amount of work times a rate:

- calibration: per cylinder, the plate's travel to the stop force at the plan's plate speed (the
  nominal modulus of the batch's gel gives the strain at 2 N), in twin time divided by the twin's
  speed, plus a fixed cost per cylinder (moves, bias, contact search, the session write) measured by
  ``benchmarks/bench_flows.py`` on this kind of machine;
- acquisition: sequences (blocks x positions x pushes, inclusion phantoms x positions x pushes) at the
  sequences per minute ``bench_flows.py`` measured on one twin, shared by the twins that drain it;
- training: the windows every net sees (epochs x training sequences for each seed and each left-out
  concentration, and the fine-tuning) at the training-step rate measured here and now on random tensors
  (a second or two);
- evaluation: the test sequences' dense maps over the ROI at the dense rate measured here and now,
  and the ToF and time-to-peak baselines at their measured time per sequence.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shearlab.devices.twin.world_config import load_world
from shearlab.orchestrator.demo import SCALES, Rigs, Scale
from shearlab.protocols.phantoms import nominal_e_kpa
from shearlab.protocols.plans import IndentationSettings
from shearlab.protocols.rig import load_rig
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, inclusion_pushes

# Measured by benchmarks/bench_flows.py (benchmarks/RESULTS.md, "Scale"), 2-core machine, twins at speed
# 10: one twin's campaign, and what a second twin adds on the same two cores (--only fanout).
SEQUENCES_PER_MIN_ONE_TWIN = 57.4
TWO_TWIN_SPEEDUP = 1.60
# Fixed wall time per cylinder beyond the plate's travel (bench_flows.py: 8 cylinders of 12.5 % in 18.1 s
# at twin speed 200, 1.75 s of it the travel to 2 N).
CYLINDER_OVERHEAD_S = 0.51
# ToF and time to peak over a ROI crop, per test sequence (bench_training.py: 2.4-3.1 s for the whole
# 250 x 600 field with ToF; the crop is a third of it, time to peak is cheaper).
BASELINES_S_PER_SEQUENCE = 1.5
# Test positions per concentration in a CV fold are 1 / n_folds of the positions.
_TEST_SHARE = 1.0
# Pushes 1 and 7 never enter training (SPEC §2).
_TRAINING_PUSHES = 5
_ROI_PX = (121, 181)


@dataclass(frozen=True)
class StageEstimate:
    """One stage: what it does, how long it should take here, and where the rate comes from."""

    stage: str
    work: str
    seconds: float
    basis: str


def _calibration(scale: Scale, world: Path | None, rigs: Rigs) -> StageEstimate:
    settings = IndentationSettings()
    batches: dict[str, float] = {}
    for block in load_world(world).blocks:
        batches.setdefault(block.batch_id, block.concentration_pct)
        for inclusion in block.inclusions:
            batches.setdefault(inclusion.batch_id, inclusion.concentration_pct)
    twin = load_rig(rigs.indentation).twin
    speed = twin.speed if twin is not None else 1.0
    area_m2 = math.pi * (10e-3) ** 2  # the plan's default cylinder: r = 10 mm, l0 = 40 mm
    seconds = 0.0
    for concentration in batches.values():
        strain = settings.stop_force_n / area_m2 / (nominal_e_kpa(concentration) * 1e3)
        travel_mm = 40.0 * strain
        seconds += scale.cylinders * (travel_mm / settings.plate_speed_mm_s / speed + CYLINDER_OVERHEAD_S)
    return StageEstimate("calibration", f"{len(batches)} batches x {scale.cylinders} cylinders", seconds,
                         f"plate travel to {settings.stop_force_n:g} N at {settings.plate_speed_mm_s:g} mm/s, twin speed "
                         f"{speed:g}, + {CYLINDER_OVERHEAD_S:g} s per cylinder (bench_flows.py)")


def _acquisition(scale: Scale, world: Path | None, twins: int) -> StageEstimate:
    blocks = load_world(world).blocks
    homogeneous = sum(1 for b in blocks if not b.inclusions)
    inclusions = len(blocks) - homogeneous
    sequences = homogeneous * scale.positions * len(PAPER_PUSH_LATERAL_MM) + inclusions * 2 * len(inclusion_pushes())
    # More twins than cores add nothing on one machine (each twin's physics takes a core).
    speedup = 1.0 if twins == 1 else TWO_TWIN_SPEEDUP
    rate = SEQUENCES_PER_MIN_ONE_TWIN * speedup
    return StageEstimate("acquisition", f"{sequences} sequences on {twins} twin(s)", 60.0 * sequences / rate,
                         f"{rate:.1f} sequences/min (bench_flows.py)")


def _training_step_rate(scale: Scale) -> float:
    import torch

    from shearlab.training.model import DenseNet3d, model_config_for_window

    torch.manual_seed(0)
    model = DenseNet3d.from_config(model_config_for_window(scale.window_px, init_channels=scale.init_channels,
                                                           growth_rate=scale.growth_rate)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=scale.lr)
    batch = 2 if scale.window_px >= 33 else 16
    x = torch.randn(batch, 1, 35, scale.window_px, scale.window_px)
    y = torch.full((batch,), 50.0)
    steps, started = 0, 0.0
    for step in range(1 + 3):
        if step == 1:  # the first step warms the allocator and oneDNN up
            started = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += step > 0
        if step > 0 and time.perf_counter() - started > 2.0:
            break
    return steps * batch / (time.perf_counter() - started)


def _dense_rate(scale: Scale) -> float:
    import torch

    from shearlab.training.inference import predict_dense
    from shearlab.training.model import DenseNet3d, model_config_for_window

    model = DenseNet3d.from_config(model_config_for_window(scale.window_px, init_channels=scale.init_channels,
                                                           growth_rate=scale.growth_rate)).eval()
    side = 48
    volume = np.random.default_rng(0).standard_normal((35, side + scale.window_px - 1, side + scale.window_px - 1))
    predict_dense(model, volume[:, :scale.window_px + 2, :scale.window_px + 2])
    started = time.perf_counter()
    with torch.no_grad():
        predict_dense(model, volume.astype(np.float32))
    return side * side / (time.perf_counter() - started)


def _training(scale: Scale, world: Path | None, loco: bool) -> tuple[StageEstimate, StageEstimate]:
    blocks = load_world(world).blocks
    homogeneous = sum(1 for b in blocks if not b.inclusions)
    inclusions = len(blocks) - homogeneous
    train_positions = scale.positions * (scale.n_folds - 2) / scale.n_folds  # one fold validates, one tests
    per_net = scale.epochs * homogeneous * train_positions * _TRAINING_PUSHES
    # Leaving a concentration out trains on the other five.
    left_out = len(scale.loco_pct) * per_net * (homogeneous - 1) / homogeneous if loco else 0.0
    fine_tune = scale.repeats * inclusions * 10 * 64 * len(inclusion_pushes())  # 10 epochs, 64 windows per sequence
    windows = scale.repeats * per_net + left_out + fine_tune
    nets = scale.repeats + (len(scale.loco_pct) if loco else 0)
    rate = _training_step_rate(scale)
    training = StageEstimate("training", f"{nets} nets, {windows:,.0f} windows ({scale.window_px} px)",
                             windows / rate, f"{rate:.1f} windows/s, measured now (random tensors)")
    test_sequences = homogeneous * scale.positions / scale.n_folds * _TEST_SHARE * len(PAPER_PUSH_LATERAL_MM) \
        + inclusions * len(inclusion_pushes())
    dense = _dense_rate(scale)
    positions = _ROI_PX[0] * _ROI_PX[1]
    seconds = test_sequences * (positions / dense + BASELINES_S_PER_SEQUENCE)
    evaluation = StageEstimate("evaluation", f"{test_sequences:.0f} test sequences: CNN maps, ToF, time to peak", seconds,
                               f"dense {dense:,.0f} positions/s measured now, baselines {BASELINES_S_PER_SEQUENCE:g} s "
                               "per sequence (bench_training.py)")
    return training, evaluation


def estimate_demo(scale: str, world: Path | None = None, *, rigs: Rigs = Rigs(), twins: int = 1,
                  loco: bool | None = None) -> list[StageEstimate]:
    """Expected wall time of every stage of ``shearlab demo --scale SCALE [--loco]`` on this machine
    (``loco`` as ``run_demo``'s: by default at paper scale only)."""
    chosen = SCALES[scale]
    with_loco = scale == "paper" if loco is None else loco
    return [_calibration(chosen, world, rigs), _acquisition(chosen, world, twins), *_training(chosen, world, with_loco)]
