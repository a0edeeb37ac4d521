"""The version-controlled deployment definition: which flows ``shearlab serve`` registers, with
which parameters and schedules.

Deployment names say where or when a flow runs (the rig, "nightly"); flow names say what it does.
Schedules come from the plan files' ``cron`` fields, so a lab edits plans, not code. Only the plans
given are registered; parameters hold absolute paths, since a run may start in another folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shearlab.orchestrator.run_labels import run_tags
from shearlab.protocols.plan_on_rig import load_calibration_on_rig, load_campaign_on_rig
from shearlab.protocols.plans import load_training_plan


@dataclass(frozen=True)
class ServeConfig:
    """Files the served flows run with; each plan is optional."""

    acquisition_rig: Path
    indentation_rig: Path
    calibration_plan: Path | None = None
    block_plan: Path | None = None
    inclusion_plan: Path | None = None
    training_plan: Path | None = None


def build_deployments(config: ServeConfig) -> list[Any]:
    """Runner deployments for every flow whose plan is given (rig and plan files validated first)."""
    from shearlab.orchestrator.flows.acquisition import campaign_flow
    from shearlab.orchestrator.flows.calibration import calibration_flow

    out = []
    if config.calibration_plan is not None:
        rig_path, plan_path = config.indentation_rig.resolve(), config.calibration_plan.resolve()
        rig, calibration = load_calibration_on_rig(rig_path, plan_path)
        out.append(calibration_flow.to_deployment(
            name=f"{rig.name}-{calibration.name}", cron=calibration.cron,
            parameters={"rig": str(rig_path), "plan": str(plan_path)},
            tags=["calibration", *run_tags(rig, calibration.name, (b.batch_id for b in calibration.batches))]))
    for plan_file, tag in ((config.block_plan, "block-campaign"), (config.inclusion_plan, "inclusion-campaign")):
        if plan_file is None:
            continue
        rig_path, plan_path = config.acquisition_rig.resolve(), plan_file.resolve()
        rig, campaign = load_campaign_on_rig(rig_path, plan_path)
        out.append(campaign_flow.to_deployment(
            name=f"{rig.name}-{campaign.name}", cron=campaign.cron,
            # Served runs have the Prefect UI: a device fault pauses for the operator (orchestrator.recovery).
            parameters={"rig": str(rig_path), "plan": str(plan_path), "on_fault": "ask"},
            tags=[tag, *run_tags(rig, campaign.name, (b.batch_id for b in campaign.blocks))]))
    if config.training_plan is not None:
        from shearlab.orchestrator.flows.training import training_flow

        plan_path = config.training_plan.resolve()
        training = load_training_plan(plan_path)
        out.append(training_flow.to_deployment(
            name=training.name, cron=training.cron, parameters={"plan_path": str(plan_path)},
            tags=["training", f"plan:{training.name}"]))
    return out
