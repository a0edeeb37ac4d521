"""``shearlab demo``: a whole simulated study on the embedded default.

Two twins (the indentation rig and the SWEI rig, as in the lab), local Prefect, local files: the
calibration of every gelatin batch, block campaigns on every concentration, the two inclusion
phantoms, a CNN trained on held-out positions, ToF, and the comparison in ``DIR/report.html`` and
``DIR/metrics.json``. ``--scale quick`` fits a 2-core machine without a GPU; ``--scale paper`` runs
the paper's protocol with the same code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shearlab.devices.connect import rig_backend
from shearlab.devices.twin.world_config import load_world
from shearlab.orchestrator.flows.acquisition import campaign_flow
from shearlab.orchestrator.flows.calibration import calibration_flow
from shearlab.orchestrator.flows.training import training_flow
from shearlab.protocols.plans import CalibrationBatch
from shearlab.protocols.rig import load_rig
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, inclusion_pushes

ROOT = Path(__file__).resolve().parents[1]
ACQUISITION_RIG = ROOT / "rigs" / "twin.toml"
INDENTATION_RIG = ROOT / "rigs" / "twin_indentation.toml"


@dataclass(frozen=True)
class Scale:
    """How much of the paper's protocol to run."""

    cylinders: int
    positions: int
    n_folds: int
    window_px: int
    init_channels: int
    growth_rate: int
    epochs: int
    batch_size: int
    lr: float


SCALES = {
    # Quick: 6 positions per block (3 folds: 4 train, 1 validation, 1 test), a compact 17 px net with a
    # larger learning rate for the few windows it sees.
    "quick": Scale(cylinders=2, positions=6, n_folds=3, window_px=17, init_channels=8, growth_rate=8,
                   epochs=60, batch_size=32, lr=1e-3),
    # Paper (SPEC §2): 8 cylinders, 80 positions, 4-fold CV, 65 px, 250 epochs, batch 250, Adam 1e-4.
    "paper": Scale(cylinders=8, positions=80, n_folds=4, window_px=65, init_channels=16, growth_rate=16,
                   epochs=250, batch_size=250, lr=1e-4),
}


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_plans(out: Path, scale: Scale) -> dict[str, Path]:
    """The demo's plan files, from the shipped world's phantoms (the lab's records of them)."""
    world = load_world()
    plans = out / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    sessions, calibration = out / "sessions", out / "calibration"
    batches: dict[str, CalibrationBatch] = {}
    for block in world.blocks:
        for batch_id, conc in ((block.batch_id, block.concentration_pct), *((i.batch_id, i.concentration_pct) for i in block.inclusions)):
            batches.setdefault(batch_id, CalibrationBatch(batch_id=batch_id, concentration_pct=conc, cylinders=scale.cylinders))
    lines = ['name = "demo-calibration"', f"out_dir = {_toml(str(calibration))}", ""]
    for b in batches.values():
        lines += ["[[batches]]", f"batch_id = {_toml(b.batch_id)}", f"concentration_pct = {b.concentration_pct}", f"cylinders = {b.cylinders}", ""]
    (plans / "calibration.toml").write_text("\n".join(lines))

    def campaign(name: str, kind: str, blocks: list, n_positions: int, pushes: tuple[float, ...], positions: Callable) -> Path:
        lines = [f"name = {_toml(name)}", f"kind = {_toml(kind)}", f"n_positions = {n_positions}", "seed = 2022",
                 f"push_lateral_mm = {_toml([round(p, 3) for p in pushes])}", f"out_dir = {_toml(str(sessions))}",
                 f"calibration_dir = {_toml(str(calibration))}", ""]
        for block in blocks:
            lines += ["[[blocks]]", f"name = {_toml(block.name)}", f"batch_id = {_toml(block.batch_id)}",
                      f"concentration_pct = {block.concentration_pct}", f"x_mm = {block.x_mm}", f"y_mm = {block.y_mm}"]
            if positions(block) is not None:
                lines.append(f"positions_mm = {_toml([list(p) for p in positions(block)])}")
            for inc in block.inclusions:
                lines += ["", "[[blocks.inclusions]]"] + [f"{k} = {_toml(v)}" for k, v in inc.model_dump(mode="json").items()]
            lines.append("")
        path = plans / f"{name}.toml"
        path.write_text("\n".join(lines))
        return path

    homogeneous = [b for b in world.blocks if not b.inclusions]
    with_inclusions = [b for b in world.blocks if b.inclusions]

    def centred_on_first_inclusion(block: Any) -> list[tuple[float, float]]:
        """Position 0 (evaluated) centred on the inclusion; position 1 (fine-tuning only) 4 mm aside."""
        inc = block.inclusions[0]
        return [(block.x_mm + inc.centre_lateral_mm, block.y_mm), (block.x_mm + inc.centre_lateral_mm + 4.0, block.y_mm + 10.0)]

    out_paths = {
        "calibration": plans / "calibration.toml",
        "blocks": campaign("blocks", "block", homogeneous, scale.positions, PAPER_PUSH_LATERAL_MM, lambda b: None),
        "inclusions": campaign("inclusions", "inclusion", with_inclusions, 2,
                               tuple(p.lateral_mm for p in inclusion_pushes()), centred_on_first_inclusion),
    }
    training = ['name = "demo-training"', f"sessions_dir = {_toml(str(sessions))}", f"calibration_dir = {_toml(str(calibration))}",
                f"out_dir = {_toml(str(out))}", 'protocol = "cv"', f"n_folds = {scale.n_folds}", f"window_px = {scale.window_px}",
                f"init_channels = {scale.init_channels}", f"growth_rate = {scale.growth_rate}", f"epochs = {scale.epochs}",
                f"batch_size = {scale.batch_size}", f"lr = {scale.lr}", "alpha_concentration_pct = 10.0"]
    (plans / "training.toml").write_text("\n".join(training) + "\n")
    out_paths["training"] = plans / "training.toml"
    return out_paths


def run_demo(out_dir: Path, scale: str = "quick", on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Calibrate, acquire, train, compare: the whole study on the twins, one Prefect flow run per step."""
    plans = write_plans(out_dir, SCALES[scale])
    stage = on_stage or (lambda name: None)
    stage("calibration")
    calibration_flow(rig_path=INDENTATION_RIG, plan_path=plans["calibration"])
    with rig_backend(load_rig(ACQUISITION_RIG)) as endpoints:
        stage("blocks")
        campaign_flow(rig_path=ACQUISITION_RIG, plan_path=plans["blocks"], endpoints=endpoints)
        stage("inclusions")
        campaign_flow(rig_path=ACQUISITION_RIG, plan_path=plans["inclusions"], endpoints=endpoints)
    stage("training")
    result = training_flow(plan_path=plans["training"])
    stage("done")
    return result
