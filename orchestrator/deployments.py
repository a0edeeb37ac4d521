"""The version-controlled deployment definition: which flows ``shearlab serve`` registers, with
which parameters and schedules.

Deployment names say where or when a flow runs (the rig, "nightly"); flow names say what it does.
Schedules come from the plan files' ``cron`` fields, so a lab edits plans, not code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shearlab.protocols.plan_on_rig import load_calibration_on_rig, load_campaign_on_rig
from shearlab.protocols.rig import load_rig


@dataclass(frozen=True)
class ServeConfig:
    """Files the served flows run with; each plan is optional."""

    acquisition_rig: Path
    indentation_rig: Path
    calibration_plan: Path | None = None
    block_plan: Path | None = None
    inclusion_plan: Path | None = None
    training_config: Path | None = None


def build_deployments(config: ServeConfig) -> list[Any]:
    """Runner deployments for every flow whose plan is given (validated first)."""
    from shearlab.orchestrator.flows.acquisition import campaign_flow
    from shearlab.orchestrator.flows.calibration import calibration_flow

    acquisition_rig = load_rig(config.acquisition_rig)
    indentation_rig = load_rig(config.indentation_rig)
    out = []
    if config.calibration_plan is not None:
        _, calibration = load_calibration_on_rig(config.indentation_rig, config.calibration_plan)
        out.append(calibration_flow.to_deployment(
            name=f"{indentation_rig.name}-{calibration.name}", cron=calibration.cron,
            parameters={"rig_path": str(config.indentation_rig), "plan_path": str(config.calibration_plan)},
            tags=["calibration", indentation_rig.name]))
    for plan_path, tag in ((config.block_plan, "block-campaign"), (config.inclusion_plan, "inclusion-campaign")):
        if plan_path is None:
            continue
        _, campaign = load_campaign_on_rig(config.acquisition_rig, plan_path)
        out.append(campaign_flow.to_deployment(
            name=f"{acquisition_rig.name}-{campaign.name}", cron=campaign.cron,
            parameters={"rig_path": str(config.acquisition_rig), "plan_path": str(plan_path)},
            tags=[tag, acquisition_rig.name]))
    if config.training_config is not None:
        from shearlab.orchestrator.flows.training import load_training_plan, training_flow

        training = load_training_plan(config.training_config)
        out.append(training_flow.to_deployment(
            name=f"{training.name}", cron=training.cron, parameters={"plan_path": str(config.training_config)},
            tags=["training"]))
    return out
