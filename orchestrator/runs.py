"""The flows as a script (and the command line) calls them: plans and rigs as models or files, paths made
absolute before they become a flow run's parameters (a worker runs a flow in another folder), typed results.

    import shearlab
    plan = shearlab.load_campaign_plan("plans/blocks.toml").model_copy(update={"n_positions": 2})
    summary = shearlab.run_campaign(plan, rig="rigs/sim.toml")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from shearlab.datasets.records import CalibrationFit
from shearlab.devices.connect import RigDevices, open_devices, rig_backend, stand_in_for
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.interfaces import DEVICE_NAMES, DeviceName
from shearlab.orchestrator.flows.acquisition import CampaignSummary, campaign_flow
from shearlab.orchestrator.flows.calibration import calibration_flow
from shearlab.orchestrator.recovery import FaultPolicy
from shearlab.orchestrator.settings import settings
from shearlab.protocols.plans import CalibrationPlan, CampaignPlan
from shearlab.protocols.rig import Rig, load_rig

M = TypeVar("M", bound=BaseModel)


def absolute(value: M | Path | str) -> M | Path:
    """A model as it is; a file's path made absolute."""
    return Path(value).resolve() if isinstance(value, Path | str) else value


def run_campaign(plan: CampaignPlan | Path | str, rig: Rig | Path | str | None = None, *,
                 endpoints: Endpoints | None = None, max_positions: int | None = None,
                 on_fault: FaultPolicy = "stop") -> CampaignSummary:
    """Acquire the campaign ``plan`` on ``rig`` (default: ``SHEARLAB_RIG``, else the shipped twin rig);
    rerun to resume. Returns what was acquired, per position and in total. ``on_fault="ask"`` pauses at a
    device fault for an operator at the Prefect UI (``orchestrator.recovery``)."""
    return campaign_flow(rig=absolute(rig or settings().rig), plan=absolute(plan), endpoints=endpoints,
                         max_positions=max_positions, on_fault=on_fault)


def run_calibration(plan: CalibrationPlan | Path | str, rig: Rig | Path | str | None = None, *,
                    endpoints: Endpoints | None = None) -> list[CalibrationFit]:
    """Indent every cylinder of the plan's batches on ``rig`` (default: ``SHEARLAB_INDENTATION_RIG``, else
    the shipped indentation twin rig); one calibration record per batch."""
    return calibration_flow(rig=absolute(rig or settings().indentation_rig), plan=absolute(plan), endpoints=endpoints)


def run_training(plan: Path | str) -> dict[str, Any]:
    """Split, train, evaluate against ToF and write the report of the training plan file ``plan``."""
    from shearlab.orchestrator.flows.training import training_flow

    return training_flow(plan_path=Path(plan).resolve())


@contextmanager
def connect(rig: Rig | Path | str | None = None, devices: tuple[DeviceName, ...] = DEVICE_NAMES, *,
            endpoints: Endpoints | None = None) -> Iterator[RigDevices]:
    """The rig's devices, connected (a twin or simulation brought up if the rig file asks for one), closed on exit.

    No device locks are taken: for looking at a rig from a script, not for running a procedure beside a flow.
    """
    model = rig if isinstance(rig, Rig) else load_rig(rig or settings().rig)
    with rig_backend(model, endpoints) as backend, stand_in_for(backend) as stand_in, \
            open_devices(model, backend, devices, stand_in=stand_in) as opened:
        yield opened
