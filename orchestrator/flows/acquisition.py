"""SWEI acquisition campaigns: probe positions on a phantom, 7 (block) or 9 (inclusion) pushes each.

At each position: contact at 0.2 N under force control, then per push fire, track, check quality,
and write the sequence; a failed check (or a shot the scanner refuses) is re-acquired up to
``qc.max_attempts`` times, then recorded as failed with its reason and the campaign carries on.
Rerunning a campaign resumes it: completed sequences stay, only missing ones are acquired, and a
protective stop left by the interrupted run is unlocked after an operator check. Any error,
cancellation or crash path lifts the probe clear; the robot's watchdog stops the arm if this process
dies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from uuid import UUID

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from shearlab.datasets.records import Label, QcResult, SequenceRecord, SessionInfo, sequence_key
from shearlab.datasets.writer import SessionWriter
from shearlab.devices.connect import RigBackend, RigDevices, open_devices, release_protective_stop, rig_backend, stand_in_for
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.interfaces import DeviceName
from shearlab.devices.stand_in import StandIn
from shearlab.orchestrator.calibration_records import load_record
from shearlab.orchestrator.first_failure import then_always
from shearlab.orchestrator.locks import hold_devices
from shearlab.orchestrator.operator import operator_for
from shearlab.orchestrator.procedures.contact import lift_clear, make_contact
from shearlab.orchestrator.procedures.sequence import acquire_sequence
from shearlab.orchestrator.recovery import RECOVERABLE, FaultPolicy, Site, ask_operator
from shearlab.orchestrator.retries import DEVICE_RETRY_DELAYS_S, retry_transient_device_errors
from shearlab.protocols.plan_on_rig import load_campaign_on_rig
from shearlab.protocols.plans import BlockTarget, CampaignPlan
from shearlab.protocols.positions import probe_positions_mm
from shearlab.protocols.rig import Rig
from shearlab.protocols.sequences import PushSpec, SequenceSpec
from shearlab.protocols.strict_model import StrictModel

ACQUISITION_DEVICES: tuple[DeviceName, ...] = ("robot", "probe_ft", "scanner")
# Rotation vector of a probe pointing straight down.
PROBE_DOWN = (np.pi, 0.0, 0.0)


@dataclass
class Counts:
    """Sequences of one position (or a whole campaign): written, recorded as failed, already present."""

    written: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        self.written += other.written
        self.failed += other.failed
        self.skipped += other.skipped


class CampaignSummary(StrictModel):
    """What a campaign run did, and the session files it wrote to; ``skipped_positions``: left out by the
    operator after a fault (a rerun acquires them)."""

    sessions: list[str]
    written: int
    failed: int
    skipped: int
    skipped_positions: list[str] = []


def session_info(plan: CampaignPlan, block: BlockTarget, rig: Rig | None) -> SessionInfo:
    return SessionInfo(
        kind=plan.kind, session_id=f"{plan.name}_{block.name}", phantom=block.name, batch_id=block.batch_id,
        concentration_pct=block.concentration_pct, rig_name=rig.name if rig else "rig",
        rig=rig.model_dump(mode="json") if rig else {},
        sequence=SequenceSpec(probe=plan.probe, imaging=plan.imaging), store_iq=plan.store_iq,
        plan={"campaign": plan.name, "seed": plan.seed, "n_positions": plan.n_positions,
              "push_lateral_mm": list(plan.push_lateral_mm), "block": block.model_dump(mode="json")},
    )


def session_path(plan: CampaignPlan, block: BlockTarget) -> Path:
    return plan.out_dir / f"{plan.name}_{block.name}.h5"


def campaign_preflight(rig_path: Path, plan_path: Path) -> tuple[Rig, CampaignPlan, dict[str, Label]]:
    """Everything a campaign checks before a device moves: both files valid, the plan within the rig's
    limits, a calibration record for every block; the labels by block name."""
    rig, plan = load_campaign_on_rig(rig_path, plan_path)
    return rig, plan, {block.name: block_label(plan, block) for block in plan.blocks}


def block_label(plan: CampaignPlan, block: BlockTarget) -> Label:
    record = load_record(plan.calibration_dir, block.batch_id)
    # The block is another sample of the batch: its label carries the spread between samples.
    return Label(e_kpa=record.e_kpa, e_kpa_std=record.sample_sd_kpa, calibration_id=record.calibration_id)


@task(name="acquire-position", retries=len(DEVICE_RETRY_DELAYS_S), retry_delay_seconds=DEVICE_RETRY_DELAYS_S,
      retry_condition_fn=retry_transient_device_errors, cache_policy=NO_CACHE)
def acquire_position(devices: RigDevices, writer: SessionWriter, plan: CampaignPlan, block: BlockTarget,
                     position_index: int, xy_mm: np.ndarray, label: Label | None) -> Counts:
    """Contact, then every push of this position that the session does not hold yet; lift."""
    done = writer.completed_keys()
    pending = [(k, x) for k, x in enumerate(plan.push_lateral_mm, start=1) if sequence_key(position_index, k) not in done]
    counts = Counts(skipped=len(plan.push_lateral_mm) - len(pending))
    if not pending:
        return counts
    # Before the probe moves: a position the disk has no room for is not begun.
    writer.ensure_room(len(pending))
    robot, sensor, scanner, clock = devices.robot, devices.probe_ft, devices.scanner, devices.clock
    limits = devices.rig.robot.limits
    surface = np.array([xy_mm[0] * 1e-3, xy_mm[1] * 1e-3, (plan.table_z_mm + block.size_mm[2]) * 1e-3])
    clear_z = surface[2] + plan.contact.lift_clearance_mm * 1e-3
    lift = partial(lift_clear, robot, clearance_z_m=clear_z, speed_m_s=limits.max_speed_m_s, accel_m_s2=limits.max_accel_m_s2)
    with then_always(lift, what="lifting the probe clear"):
        contact = make_contact(robot, sensor, clock, surface_xyz_m=surface, settings=plan.contact,
                               max_force_n=limits.max_contact_force_n, speed_m_s=limits.max_speed_m_s,
                               accel_m_s2=limits.max_accel_m_s2)
        for push_index, lateral_mm in pending:
            sequence = SequenceSpec(probe=plan.probe, push=PushSpec(lateral_mm=lateral_mm), imaging=plan.imaging)
            for attempt in range(1, plan.qc.max_attempts + 1):
                outcome = acquire_sequence(robot, sensor, scanner, clock, sequence,
                                           target_force_n=plan.contact.target_force_n, qc=plan.qc)
                if outcome.qc.passed or attempt == plan.qc.max_attempts:
                    break
            failed = not outcome.qc.passed
            writer.append_sequence(SequenceRecord(
                key=sequence_key(position_index, push_index), position_index=position_index, push_index=push_index,
                push_lateral_mm=lateral_mm, probe_pose=contact.pose,
                displacement_um=None if outcome.displacement_um is None else outcome.displacement_um.astype(np.float32),
                contact_force_n=outcome.force_n, contact_force_time_s=outcome.force_time_s,
                acquired_at=datetime.now(UTC).isoformat(),
                qc=QcResult(passed=outcome.qc.passed, reason=outcome.qc.reason, figures=outcome.qc.figures),
                label=None if failed else label, iq=outcome.iq[1:] if plan.store_iq and outcome.iq is not None else None,
                attempt=attempt, failed=failed, failure_reason=outcome.qc.reason if failed else "",
            ))
            if failed:
                counts.failed += 1
            else:
                counts.written += 1
    return counts


def safe_state(devices: RigDevices, *, clearance_z_m: float) -> None:
    """Probe lifted clear and the arm at rest; best effort, whatever state the devices are in."""
    limits = devices.rig.robot.limits
    if devices.robot.is_protective_stopped():
        return
    devices.robot.stop()
    lift_clear(devices.robot, clearance_z_m=clearance_z_m, speed_m_s=limits.max_speed_m_s, accel_m_s2=limits.max_accel_m_s2)


@dataclass
class CampaignRun:
    """A campaign run's progress across the attempts a fault may cost it: what is done, what the operator
    skipped, where it is now."""

    rig: Rig
    plan: CampaignPlan
    labels: dict[str, Label]
    n_positions: int
    progress: UUID
    totals: Counts = field(default_factory=Counts)
    sessions: dict[str, None] = field(default_factory=dict)
    done: set[tuple[str, int]] = field(default_factory=set)
    skipped: set[tuple[str, int]] = field(default_factory=set)
    site: Site = field(default_factory=Site)

    def advance(self) -> None:
        self.done.add(self.site.key)
        steps = len(self.plan.blocks) * self.n_positions
        update_progress_artifact(self.progress, progress=100.0 * len(self.done | self.skipped) / steps)


@flow(name="swei-campaign", log_prints=True)
def campaign_flow(rig_path: Path, plan_path: Path, endpoints: Endpoints | None = None,
                  max_positions: int | None = None, on_fault: FaultPolicy = "stop") -> CampaignSummary:
    """Acquire every block (or inclusion phantom) of the plan; resumes an interrupted campaign.

    ``endpoints``: a running twin to use; without, the rig file says what to bring up (a twin process, the
    in-process simulation) or which hardware to connect to. ``on_fault``: ``"stop"`` ends the run at a device
    fault, safely; ``"ask"`` pauses it with a form for the operator at the Prefect UI (``orchestrator.recovery``).
    """
    rig, plan, labels = campaign_preflight(rig_path, plan_path)
    progress = create_progress_artifact(progress=0.0, description=f"campaign {plan.name}")
    assert isinstance(progress, UUID), "a synchronous flow gets the artifact's id, not a coroutine"
    run = CampaignRun(rig, plan, labels, min(plan.n_positions, max_positions or plan.n_positions), progress)
    # The devices are held before a twin is started for them: a second run for the same twin waits here.
    with hold_devices(rig, ACQUISITION_DEVICES, endpoints), rig_backend(rig, endpoints) as backend, stand_in_for(backend) as stand_in:
        confirm = operator_for(stand_in).confirm
        while True:
            try:
                _acquire(run, backend, stand_in, confirm)
                break
            except RECOVERABLE as fault:
                if on_fault == "stop":
                    raise
                action = ask_operator(fault, run.site)
                if action == "abort":
                    raise
                if action == "skip":
                    run.skipped.add(run.site.key)
                # The operator has just looked at the rig: a protective stop is unlocked without asking twice.
                confirm = _confirmed_by_the_fault_form
    sessions = list(run.sessions)
    create_markdown_artifact(key=f"campaign-{plan.name.lower().replace('_', '-')}", markdown=_summary(plan, run.totals, sessions),
                             description=f"SWEI campaign {plan.name}")
    return CampaignSummary(sessions=sessions, written=run.totals.written, failed=run.totals.failed, skipped=run.totals.skipped,
                           skipped_positions=[f"{block} position {index}" for block, index in sorted(run.skipped)])


def _confirmed_by_the_fault_form(message: str) -> None:
    get_run_logger().warning("operator check (confirmed in the fault form): %s", message)


def _acquire(run: CampaignRun, backend: RigBackend, stand_in: StandIn | None, confirm: Callable[[str], None]) -> None:
    """Connect the devices and acquire every position not done (or skipped) yet; the probe lifted however it ends."""
    rig, plan = run.rig, run.plan
    # The controller will not run the control script in a protective stop: the robot cannot
    # even be connected before the stop is unlocked.
    release_protective_stop(rig, backend, confirm=confirm)
    with open_devices(rig, backend, ACQUISITION_DEVICES, stand_in=stand_in) as devices:
        top = max(plan.table_z_mm + b.size_mm[2] for b in plan.blocks) * 1e-3
        clear_z = top + plan.contact.lift_clearance_mm * 1e-3
        devices.robot.set_watchdog(rig.robot.limits.watchdog_hz)
        with then_always(partial(safe_state, devices, clearance_z_m=clear_z), what="making the rig safe"):
            safe_state(devices, clearance_z_m=clear_z)
            for block in plan.blocks:
                path = session_path(plan, block)
                run.sessions[str(path)] = None
                positions = probe_positions_mm(block, plan.n_positions, edge_margin_mm=plan.edge_margin_mm, seed=plan.seed)
                with SessionWriter.open(path, session=session_info(plan, block, rig), resume=True) as writer:
                    for index in range(min(run.n_positions, len(positions))):
                        if (block.name, index) in run.done | run.skipped:
                            continue
                        run.site = Site(block.name, index)
                        run.totals.add(acquire_position(devices, writer, plan, block, index, positions[index], run.labels[block.name]))
                        run.advance()
                get_run_logger().info("block %s: session %s", block.name, path)


def _summary(plan: CampaignPlan, totals: Counts, sessions: list[str]) -> str:
    lines = [f"## Campaign {plan.name}", "", f"- sequences written: {totals.written}",
             f"- recorded as failed after {plan.qc.max_attempts} attempts: {totals.failed}",
             f"- already present (resumed): {totals.skipped}", "", "Sessions:"]
    lines += [f"- `{s}`" for s in sessions]
    return "\n".join(lines)
