"""shearlab: robotic ultrasound shear-wave elasticity experiments, end to end.

The public API, for scripts and notebooks::

    import shearlab

    plan = shearlab.CampaignPlan(name="two-positions", blocks=[...], n_positions=2)
    summary = shearlab.run_campaign(plan, rig="rigs/sim.toml")
    print(summary.qc_pass_rate, summary.sessions)

Names are imported on first use: ``import shearlab.datasets`` on a rig PC does not pay for Prefect, and a
torch-free install imports everything but the training names.
"""

# The imports under TYPE_CHECKING are for type checkers and editors only: ``__getattr__`` makes them at runtime.
# ruff: noqa: F401
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("shearlab")
except PackageNotFoundError:  # a bare checkout on sys.path, not installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from shearlab.datasets.catalogue import Catalogue
    from shearlab.datasets.integrity import check_session
    from shearlab.datasets.reader import SessionReader
    from shearlab.datasets.records import CalibrationFit
    from shearlab.datasets.uff import export_uff
    from shearlab.orchestrator.flows.acquisition import (
        CampaignShare,
        CampaignSummary,
        PositionSummary,
        campaign_flow,
        fanout_campaign_flow,
    )
    from shearlab.orchestrator.flows.calibration import calibration_flow
    from shearlab.orchestrator.runs import connect, run_calibration, run_campaign, run_training
    from shearlab.orchestrator.settings import Settings, settings
    from shearlab.protocols.plans import (
        BlockTarget,
        CalibrationBatch,
        CalibrationPlan,
        CampaignPlan,
        IndentationSettings,
        TrainingPlan,
        load_calibration_plan,
        load_campaign_plan,
        load_training_plan,
        write_plan,
    )
    from shearlab.protocols.rig import Rig, load_rig
    from shearlab.protocols.shipped import shipped_file

# Public name -> the module that defines it.
_API = {
    "BlockTarget": "shearlab.protocols.plans",
    "CalibrationBatch": "shearlab.protocols.plans",
    "CalibrationPlan": "shearlab.protocols.plans",
    "CampaignPlan": "shearlab.protocols.plans",
    "IndentationSettings": "shearlab.protocols.plans",
    "TrainingPlan": "shearlab.protocols.plans",
    "load_calibration_plan": "shearlab.protocols.plans",
    "load_campaign_plan": "shearlab.protocols.plans",
    "load_training_plan": "shearlab.protocols.plans",
    "write_plan": "shearlab.protocols.plans",
    "Rig": "shearlab.protocols.rig",
    "load_rig": "shearlab.protocols.rig",
    "shipped_file": "shearlab.protocols.shipped",
    "Settings": "shearlab.orchestrator.settings",
    "settings": "shearlab.orchestrator.settings",
    "run_campaign": "shearlab.orchestrator.runs",
    "run_calibration": "shearlab.orchestrator.runs",
    "run_training": "shearlab.orchestrator.runs",
    "connect": "shearlab.orchestrator.runs",
    "campaign_flow": "shearlab.orchestrator.flows.acquisition",
    "fanout_campaign_flow": "shearlab.orchestrator.flows.acquisition",
    "CampaignShare": "shearlab.orchestrator.flows.acquisition",
    "CampaignSummary": "shearlab.orchestrator.flows.acquisition",
    "PositionSummary": "shearlab.orchestrator.flows.acquisition",
    "calibration_flow": "shearlab.orchestrator.flows.calibration",
    "CalibrationFit": "shearlab.datasets.records",
    "SessionReader": "shearlab.datasets.reader",
    "Catalogue": "shearlab.datasets.catalogue",
    "check_session": "shearlab.datasets.integrity",
    "export_uff": "shearlab.datasets.uff",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'shearlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
