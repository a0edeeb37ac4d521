"""A plan checked against the rig it runs on, before any device moves.

Each file validates on its own (``protocols.rig``, ``protocols.plans``); together they must also agree: a
campaign's contact force stays below the rig's contact limit, its probe positions and lifts stay inside
the robot's workspace, a calibration's stop force below the hexapod's force limit. ``load_campaign_on_rig``
and ``load_calibration_on_rig`` load both files and raise ``PlanRigMismatch`` (a ``ConfigFileError``
naming the plan file, one line per plan field) when they do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from shearlab.protocols.config_files import ConfigFileError
from shearlab.protocols.plans import BlockTarget, CalibrationPlan, CampaignPlan, load_calibration_plan, load_campaign_plan
from shearlab.protocols.rig import Rig, load_rig


class PlanRigMismatch(ConfigFileError):
    """A plan asks for more than the rig it runs on allows."""


def campaign_problems(plan: CampaignPlan, rig: Rig) -> list[str]:
    """``field: problem`` for each way ``plan`` exceeds ``rig``'s robot limits; empty when it fits."""
    limits = rig.robot.limits
    contact = plan.contact
    problems = []
    # The loop holds the force within the tolerance and QC passes shots within its force error: either
    # margin above the target must stay below the limit.
    margin_n = max(contact.tolerance_n, plan.qc.max_force_error_n)
    if contact.target_force_n + margin_n >= limits.max_contact_force_n:
        problems.append(f"contact.target_force_n: {contact.target_force_n} N (+ {margin_n} N tolerance) is not below the rig's "
                        f"robot.limits.max_contact_force_n {limits.max_contact_force_n} N")
    for field in ("max_speed_m_s", "approach_speed_m_s"):
        speed = getattr(contact, field)
        if speed > limits.max_speed_m_s:
            problems.append(f"contact.{field}: {speed} m/s is above the rig's robot.limits.max_speed_m_s {limits.max_speed_m_s} m/s")
    for index, block in enumerate(plan.blocks):
        for xyz_m in _probe_points_m(plan, block):
            if not limits.workspace.contains(xyz_m):
                where = ", ".join(f"{v * 1e3:.0f}" for v in xyz_m)
                problems.append(f"blocks.{index}: the probe would go to ({where}) mm, outside the rig's robot.limits.workspace "
                                f"{_box_mm(rig)}")
                break
    return problems


def calibration_problems(plan: CalibrationPlan, rig: Rig) -> list[str]:
    """``field: problem`` for each way ``plan`` exceeds ``rig``'s hexapod limits; empty when it fits."""
    limits = rig.hexapod.limits
    settings = plan.indentation
    problems = []
    if settings.stop_force_n >= limits.max_force_n:
        problems.append(f"indentation.stop_force_n: {settings.stop_force_n} N is not below the rig's hexapod.limits.max_force_n "
                        f"{limits.max_force_n} N")
    for field in ("plate_speed_mm_s", "approach_speed_mm_s"):
        speed = getattr(settings, field)
        if speed > limits.max_velocity_mm_s:
            problems.append(f"indentation.{field}: {speed} mm/s is above the rig's hexapod.limits.max_velocity_mm_s "
                            f"{limits.max_velocity_mm_s} mm/s")
    if settings.retract_mm > limits.max_travel_mm:
        problems.append(f"indentation.retract_mm: {settings.retract_mm} mm is beyond the rig's hexapod.limits.max_travel_mm "
                        f"{limits.max_travel_mm} mm")
    for index, batch in enumerate(plan.batches):
        press_mm = settings.max_strain * batch.length_mm
        if press_mm > limits.max_travel_mm:
            problems.append(f"batches.{index}: max_strain {settings.max_strain} of a {batch.length_mm} mm cylinder is {press_mm:.1f} mm "
                            f"of travel, beyond the rig's hexapod.limits.max_travel_mm {limits.max_travel_mm} mm")
    return problems


def ensure_fits(plan: CampaignPlan | CalibrationPlan, rig: Rig, *, plan_file: Path | str | None = None,
                rig_file: Path | str | None = None) -> None:
    """Raise ``PlanRigMismatch`` (naming the plan's file, or the plan) unless ``plan`` fits ``rig``."""
    problems = campaign_problems(plan, rig) if isinstance(plan, CampaignPlan) else calibration_problems(plan, rig)
    if problems:
        where = f"rig file {rig_file}" if rig_file is not None else f"rig {rig.name}"
        raise PlanRigMismatch(plan_file if plan_file is not None else f"plan {plan.name}", [f"{p} ({where})" for p in problems])


def load_campaign_on_rig(rig_path: Path | str, plan_path: Path | str) -> tuple[Rig, CampaignPlan]:
    """Load a rig file and a campaign plan and check that the plan fits the rig."""
    rig, plan = load_rig(rig_path), load_campaign_plan(plan_path)
    ensure_fits(plan, rig, plan_file=plan_path, rig_file=rig_path)
    return rig, plan


def load_calibration_on_rig(rig_path: Path | str, plan_path: Path | str) -> tuple[Rig, CalibrationPlan]:
    """Load a rig file and a calibration plan and check that the plan fits the rig."""
    rig, plan = load_rig(rig_path), load_calibration_plan(plan_path)
    ensure_fits(plan, rig, plan_file=plan_path, rig_file=rig_path)
    return rig, plan


def _probe_points_m(plan: CampaignPlan, block: BlockTarget) -> Iterator[tuple[float, float, float]]:
    """Where the probe goes over ``block``: on its top and lifted clear, at each explicit position or at the
    corners of the area random positions are drawn from."""
    surface_mm = plan.table_z_mm + block.size_mm[2]
    if block.positions_mm is not None:
        xy_mm = list(block.positions_mm)
    else:
        hx, hy = block.size_mm[0] / 2 - plan.edge_margin_mm, block.size_mm[1] / 2 - plan.edge_margin_mm
        xy_mm = [(block.x_mm + sx * hx, block.y_mm + sy * hy) for sx in (-1, 1) for sy in (-1, 1)]
    for x_mm, y_mm in xy_mm:
        for z_mm in (surface_mm, surface_mm + plan.contact.lift_clearance_mm):
            yield (x_mm * 1e-3, y_mm * 1e-3, z_mm * 1e-3)


def _box_mm(rig: Rig) -> str:
    box = rig.robot.limits.workspace
    return " to ".join("(" + ", ".join(f"{v * 1e3:.0f}" for v in corner) + ")" for corner in (box.min_m, box.max_m)) + " mm"
