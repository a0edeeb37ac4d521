"""The demo's plans come from the world it runs on: any phantom catalogue, not the shipped geometry."""

from __future__ import annotations

from pathlib import Path

from shearlab.orchestrator.demo import SCALES, write_plans
from shearlab.protocols.plans import load_calibration_plan, load_campaign_plan, load_training_plan

ALT_WORLD = Path(__file__).resolve().parents[1] / "data" / "worlds" / "alt_inclusions.toml"


def test_plans_follow_the_world_file(tmp_path: Path) -> None:
    plans = write_plans(tmp_path, SCALES["quick"], ALT_WORLD, loco=True)
    inclusions = load_campaign_plan(plans["inclusions"])
    assert [b.name for b in inclusions.blocks] == ["inclusion_small_stiff", "inclusion_large_deep"]
    small = inclusions.blocks[0]
    # Position 0 is centred on the inclusion, as for the shipped phantoms.
    assert small.positions_mm is not None and small.positions_mm[0] == (55.0 + 3.0, 320.0)
    batches = {b.batch_id: b for b in load_calibration_plan(plans["calibration"]).batches}
    assert {"A1-5.0", "A1-12.5", "A2-10.0", "A2-17.5"} <= set(batches)
    assert all(b.cylinders == 3 for b in batches.values())
    training = load_training_plan(plans["training"])
    assert training.world == ALT_WORLD and training.loco_concentrations_pct == (10.0,) and training.repeats == 2


def test_paper_scale_indents_eight_cylinders_and_leaves_concentrations_out(tmp_path: Path) -> None:
    plans = write_plans(tmp_path, SCALES["paper"], loco=True)
    assert {b.cylinders for b in load_calibration_plan(plans["calibration"]).batches} == {8}
    assert load_training_plan(plans["training"]).loco_concentrations_pct == (7.5, 10.0, 12.5, 15.0)
    assert load_campaign_plan(plans["blocks"]).n_positions == 80
