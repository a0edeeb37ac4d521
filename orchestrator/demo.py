"""``shearlab demo``: a whole simulated study on the embedded default.

Two twins (the indentation rig and the SWEI rig, as in the lab), local Prefect, local files: the
calibration of every gelatin batch, block campaigns on every concentration, the two inclusion
phantoms, a CNN trained on held-out positions, ToF, and the comparison in ``DIR/report.html`` and
``DIR/metrics.json``. ``--scale quick`` fits a 2-core machine without a GPU; ``--scale paper`` runs
the paper's protocol with the same code.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shearlab.devices.connect import twin_endpoints
from shearlab.devices.twin.world_config import load_world
from shearlab.orchestrator.flows.acquisition import campaign_flow
from shearlab.orchestrator.flows.calibration import calibration_flow
from shearlab.orchestrator.flows.training import training_flow
from shearlab.protocols.phantoms import Block
from shearlab.protocols.plans import BlockTarget, CalibrationBatch, CalibrationPlan, CampaignPlan, TrainingPlan, WindowPx, write_plan
from shearlab.protocols.rig import load_rig
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, inclusion_pushes
from shearlab.protocols.shipped import shipped_file

ACQUISITION_RIG = shipped_file("rigs", "twin.toml")
INDENTATION_RIG = shipped_file("rigs", "twin_indentation.toml")


@dataclass(frozen=True)
class Rigs:
    """The two rig files the study runs on, as in the lab: the indentation rig and the SWEI rig."""

    indentation: Path = INDENTATION_RIG
    acquisition: Path = ACQUISITION_RIG


@dataclass(frozen=True)
class Scale:
    """How much of the paper's protocol to run."""

    name: str
    cylinders: int
    positions: int
    n_folds: int
    window_px: WindowPx
    init_channels: int
    growth_rate: int
    epochs: int
    batch_size: int
    lr: float
    repeats: int
    loco_pct: tuple[float, ...]


SCALES = {
    # Quick: 6 positions per block (3 folds: 4 train, 1 validation, 1 test), a compact 17 px net with a
    # larger learning rate for the few windows it sees, trained twice (seeds 0 and 1) for the spread;
    # leave-one-concentration-out (10 %) only with --loco, for the 15-minute budget.
    "quick": Scale(name="quick demo", cylinders=3, positions=6, n_folds=3, window_px=17, init_channels=8, growth_rate=8,
                   epochs=60, batch_size=32, lr=1e-3, repeats=2, loco_pct=(10.0,)),
    # Paper (SPEC §2): 8 cylinders, 80 positions, 4-fold CV, 65 px, 250 epochs, batch 250, Adam 1e-4;
    # protocol (b) over 7.5-15 %.
    "paper": Scale(name="paper scale", cylinders=8, positions=80, n_folds=4, window_px=65, init_channels=16, growth_rate=16,
                   epochs=250, batch_size=250, lr=1e-4, repeats=2, loco_pct=(7.5, 10.0, 12.5, 15.0)),
}


def write_plans(out: Path, scale: Scale, world: Path | None = None, *, loco: bool = False) -> dict[str, Path]:
    """The demo's plan files, from the world's phantoms (the lab's records of them); ``loco`` adds the
    scale's leave-one-concentration-out nets to the training plan."""
    phantoms = load_world(world).blocks
    plans, sessions, calibration = out / "plans", out / "sessions", out / "calibration"
    batches: dict[str, CalibrationBatch] = {}
    for block in phantoms:
        for batch_id, conc in ((block.batch_id, block.concentration_pct), *((i.batch_id, i.concentration_pct) for i in block.inclusions)):
            batches.setdefault(batch_id, CalibrationBatch(batch_id=batch_id, concentration_pct=conc, cylinders=scale.cylinders))

    def targets(blocks: list[Block], positions: Callable[[Block], tuple[tuple[float, float], ...] | None]) -> tuple[BlockTarget, ...]:
        return tuple(BlockTarget(name=b.name, batch_id=b.batch_id, concentration_pct=b.concentration_pct, x_mm=b.x_mm,
                                 y_mm=b.y_mm, size_mm=b.size_mm, inclusions=b.inclusions, positions_mm=positions(b))
                     for b in blocks)

    def centred_on_first_inclusion(block: Block) -> tuple[tuple[float, float], ...]:
        """Position 0 (evaluated) centred on the inclusion; position 1 (fine-tuning only) 4 mm aside."""
        inc = block.inclusions[0]
        return ((block.x_mm + inc.centre_lateral_mm, block.y_mm), (block.x_mm + inc.centre_lateral_mm + 4.0, block.y_mm + 10.0))

    homogeneous = [b for b in phantoms if not b.inclusions]
    with_inclusions = [b for b in phantoms if b.inclusions]
    return {
        "calibration": write_plan(plans / "calibration.toml", CalibrationPlan(
            name="demo-calibration", batches=tuple(batches.values()), out_dir=calibration)),
        "blocks": write_plan(plans / "blocks.toml", CampaignPlan(
            name="blocks", kind="block", blocks=targets(homogeneous, lambda b: None), n_positions=scale.positions,
            push_lateral_mm=PAPER_PUSH_LATERAL_MM, seed=2022, out_dir=sessions, calibration_dir=calibration)),
        "inclusions": write_plan(plans / "inclusions.toml", CampaignPlan(
            name="inclusions", kind="inclusion", blocks=targets(with_inclusions, centred_on_first_inclusion), n_positions=2,
            push_lateral_mm=tuple(round(p.lateral_mm, 3) for p in inclusion_pushes()), seed=2022, out_dir=sessions,
            calibration_dir=calibration)),
        "training": write_plan(plans / "training.toml", TrainingPlan(
            name="demo-training", sessions_dir=sessions, calibration_dir=calibration, out_dir=out, protocol="cv",
            n_folds=scale.n_folds, window_px=scale.window_px, init_channels=scale.init_channels,
            growth_rate=scale.growth_rate, epochs=scale.epochs, batch_size=scale.batch_size, lr=scale.lr,
            alpha_concentration_pct=10.0, repeats=scale.repeats, loco_concentrations_pct=scale.loco_pct if loco else (),
            description=f"shearlab demo, {scale.name}", world=world.resolve() if world else None)),
    }


def calibrate(plans: dict[str, Path], world: Path | None = None, *, rigs: Rigs = Rigs()) -> None:
    """Indent the cylinders of every batch on the indentation rig's twin (with ``world``'s gels)."""
    with twin_endpoints(load_rig(rigs.indentation), world=world) as endpoints:
        calibration_flow(rig=rigs.indentation, plan=plans["calibration"].resolve(), endpoints=endpoints)


def acquire(plans: dict[str, Path], campaigns: tuple[str, ...], world: Path | None = None,
            on_stage: Callable[[str], None] | None = None, *, rigs: Rigs = Rigs()) -> None:
    """Run the named campaigns (``"blocks"``, ``"inclusions"``) on one SWEI rig twin."""
    with twin_endpoints(load_rig(rigs.acquisition), world=world) as endpoints:
        for name in campaigns:
            (on_stage or (lambda _: None))(name)
            campaign_flow(rig=rigs.acquisition, plan=plans[name].resolve(), endpoints=endpoints)


def run_demo(out_dir: Path, scale: str = "quick", on_stage: Callable[[str], None] | None = None,
             world: Path | None = None, *, rigs: Rigs = Rigs(), loco: bool | None = None) -> dict[str, Any]:
    """Calibrate, acquire, train, compare: the whole study on the twins, one Prefect flow run per step.
    ``loco`` (default: only at paper scale) adds protocol (b), a net per left-out concentration. Writes
    ``demo_run.json`` (wall time per stage, machine) beside the report."""
    plans = write_plans(out_dir, SCALES[scale], world, loco=scale == "paper" if loco is None else loco)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    current = ("", started)

    def stage(name: str) -> None:
        nonlocal current
        now = time.perf_counter()
        if current[0]:
            stages[current[0]] = now - current[1]
        current = (name, now)
        if on_stage is not None:
            on_stage(name)

    stage("calibration")
    calibrate(plans, world, rigs=rigs)
    acquire(plans, ("blocks", "inclusions"), world, stage, rigs=rigs)
    stage("training")
    result = training_flow(plan_path=plans["training"].resolve())
    stage("done")
    run = {"command": f"shearlab demo --scale {scale}" + (f" --world {world}" if world else "") + (" --loco" if loco else ""),
           "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
           "wall_s": time.perf_counter() - started, "stages_s": stages, "load_average": os.getloadavg()[0]}
    (out_dir / "demo_run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    return result
