"""SWEI acquisition campaigns: probe positions on a phantom, 7 (block) or 9 (inclusion) pushes each.

At each position: contact at 0.2 N under force control, then per push fire, track, check quality,
and write the sequence; a failed check (or a shot the scanner refuses) is re-acquired up to
``qc.max_attempts`` times, then recorded as failed with its reason and the campaign carries on.
Rerunning a campaign resumes it: completed sequences stay, only missing ones are acquired, and a
protective stop left by the interrupted run is unlocked after an operator check. Any error,
cancellation or crash path lifts the probe clear; the robot's watchdog stops the arm if this process
dies.

With a ``checkpoint`` in the plan, the latest model maps every push beside the acquisition and each
position is published as it completes (``live_maps``: files for ``shearlab live``, a Prefect artifact);
its uncertainty is one more QC check, and ``strategy = "adaptive"`` places the probe where it is least
sure (``position_strategy``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
from prefect import flow, get_run_logger, task
from prefect import tags as prefect_tags
from prefect.cache_policies import NO_CACHE
from pydantic import computed_field

from shearlab.datasets.records import Label, QcResult, SequenceRecord, SessionInfo, sequence_key
from shearlab.datasets.writer import SessionWriter
from shearlab.devices.connect import RigDevices, open_devices, release_protective_stop, rig_backend, stand_in_for
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.interfaces import DeviceName
from shearlab.orchestrator.calibration_records import load_record
from shearlab.orchestrator.live_maps import LatestModel, LiveMapping, SequenceMap, SessionMaps
from shearlab.orchestrator.locks import hold_devices
from shearlab.orchestrator.operator import operator_for
from shearlab.orchestrator.position_strategy import position_strategy
from shearlab.orchestrator.procedures.contact import lift_clear, make_contact
from shearlab.orchestrator.procedures.qc import QcVerdict, check_uncertainty
from shearlab.orchestrator.procedures.sequence import SequenceOutcome, acquire_sequence
from shearlab.orchestrator.progress import Progress
from shearlab.orchestrator.reports import publish_campaign
from shearlab.orchestrator.retries import DEVICE_RETRY_DELAYS_S, retry_transient_device_errors
from shearlab.orchestrator.run_labels import as_model, parameter_name, run_tags, started_name, tag_flow_run
from shearlab.orchestrator.settings import settings
from shearlab.protocols.plans import BlockTarget, CampaignPlan, load_campaign_plan
from shearlab.protocols.rig import Rig, load_rig
from shearlab.protocols.sequences import PushSpec, SequenceSpec
from shearlab.protocols.strict_model import StrictModel

ACQUISITION_DEVICES: tuple[DeviceName, ...] = ("robot", "probe_ft", "scanner")
# Rotation vector of a probe pointing straight down.
PROBE_DOWN = (np.pi, 0.0, 0.0)


class PositionSummary(StrictModel):
    """One probe position of a campaign run: what was acquired there and what went wrong."""

    block: str
    batch_id: str
    position: int
    x_mm: float
    y_mm: float
    written: int = 0
    failed: int = 0
    skipped: int = 0
    # Extra shots after a failed quality check (or a refused shot), whether the sequence passed in the end or not.
    reacquired: int = 0
    # The check that failed, one entry per sequence recorded as failed (orchestrator.procedures.qc.QcCheck).
    failures: tuple[str, ...] = ()


class CampaignSummary(StrictModel):
    """What a campaign run did: per position, and in total; the session files and the calibration
    records its labels came from."""

    plan: str
    rig: str
    sessions: list[str]
    # Batch id -> the calibration record whose modulus labels that batch's sequences.
    calibration_ids: dict[str, str]
    positions: list[PositionSummary]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def written(self) -> int:
        return sum(p.written for p in self.positions)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return sum(p.failed for p in self.positions)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def skipped(self) -> int:
        return sum(p.skipped for p in self.positions)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reacquired(self) -> int:
        return sum(p.reacquired for p in self.positions)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def qc_pass_rate(self) -> float | None:
        """Sequences acquired in this run that passed the quality gate (re-acquisitions included); None if none."""
        acquired = self.written + self.failed
        return self.written / acquired if acquired else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failures_by_check(self) -> dict[str, int]:
        return dict(Counter(check for p in self.positions for check in p.failures).most_common())


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


def block_label(plan: CampaignPlan, block: BlockTarget) -> Label:
    record = load_record(plan.calibration_dir, block.batch_id)
    # The block is another sample of the batch: its label carries the spread between samples.
    return Label(e_kpa=record.e_kpa, e_kpa_std=record.sample_sd_kpa, calibration_id=record.calibration_id)


@task(name="acquire-position", task_run_name="{block.batch_id} position {position_index}",
      retries=len(DEVICE_RETRY_DELAYS_S), retry_delay_seconds=DEVICE_RETRY_DELAYS_S,
      retry_condition_fn=retry_transient_device_errors, cache_policy=NO_CACHE)
def acquire_position(devices: RigDevices, writer: SessionWriter, plan: CampaignPlan, block: BlockTarget,
                     position_index: int, xy_mm: np.ndarray, label: Label | None,
                     live: SessionMaps | None = None) -> PositionSummary:
    """Contact, then every push of this position that the session does not hold yet; lift. With ``live``,
    each written push is mapped beside the acquisition (and first judged by its map's uncertainty, when
    the QC's uncertainty gate is on) and the position is published once its pushes are written."""
    done = writer.completed_keys()
    pending = [(k, x) for k, x in enumerate(plan.push_lateral_mm, start=1) if sequence_key(position_index, k) not in done]
    written, reacquired, failures = 0, 0, []
    summary = partial(PositionSummary, block=block.name, batch_id=block.batch_id, position=position_index,
                      x_mm=float(xy_mm[0]), y_mm=float(xy_mm[1]), skipped=len(plan.push_lateral_mm) - len(pending))
    if not pending:
        return summary()
    robot, sensor, scanner, clock = devices.robot, devices.probe_ft, devices.scanner, devices.clock
    limits = devices.rig.robot.limits
    surface = np.array([xy_mm[0] * 1e-3, xy_mm[1] * 1e-3, (plan.table_z_mm + block.size_mm[2]) * 1e-3])
    clear_z = surface[2] + plan.contact.lift_clearance_mm * 1e-3
    try:
        contact = make_contact(robot, sensor, clock, surface_xyz_m=surface, settings=plan.contact,
                               max_force_n=limits.max_contact_force_n, speed_m_s=limits.max_speed_m_s,
                               accel_m_s2=limits.max_accel_m_s2)
        for push_index, lateral_mm in pending:
            sequence = SequenceSpec(probe=plan.probe, push=PushSpec(lateral_mm=lateral_mm), imaging=plan.imaging)
            for attempt in range(1, plan.qc.max_attempts + 1):
                outcome = acquire_sequence(robot, sensor, scanner, clock, sequence,
                                           target_force_n=plan.contact.target_force_n, qc=plan.qc)
                verdict, sequence_map = _judge_uncertainty(outcome, live, plan, push_index, lateral_mm)
                if verdict.passed or attempt == plan.qc.max_attempts:
                    break
            failed = not verdict.passed
            reacquired += attempt - 1
            record = SequenceRecord(
                key=sequence_key(position_index, push_index), position_index=position_index, push_index=push_index,
                push_lateral_mm=lateral_mm, probe_pose=contact.pose,
                displacement_um=None if outcome.displacement_um is None else outcome.displacement_um.astype(np.float32),
                contact_force_n=outcome.force_n, contact_force_time_s=outcome.force_time_s,
                acquired_at=datetime.now(UTC).isoformat(),
                qc=QcResult(passed=verdict.passed, reason=verdict.reason, figures=verdict.figures),
                label=None if failed else label, iq=outcome.iq[1:] if plan.store_iq and outcome.iq is not None else None,
                attempt=attempt, failed=failed, failure_reason=verdict.reason if failed else "",
            )
            writer.append_sequence(record)
            if live is not None:
                live.add(record, sequence_map)
            if failed:
                failures.append(verdict.check)
            else:
                written += 1
    finally:
        lift_clear(robot, clearance_z_m=clear_z, speed_m_s=limits.max_speed_m_s, accel_m_s2=limits.max_accel_m_s2)
    if live is not None:
        live.position_done(position_index, (float(xy_mm[0]), float(xy_mm[1])))
    return summary(written=written, failed=len(failures), reacquired=reacquired, failures=tuple(failures))


def _judge_uncertainty(outcome: SequenceOutcome, live: SessionMaps | None, plan: CampaignPlan, push_index: int,
                       lateral_mm: float) -> tuple[QcVerdict, SequenceMap | None]:
    """The signal checks' verdict, then the uncertainty gate's (the push's map, made now) when it is on."""
    if live is None or not plan.qc.uncertainty_gate or not outcome.qc.passed or outcome.displacement_um is None:
        return outcome.qc, None
    if not live.mapping.model.current().has_sigma:
        return outcome.qc, None
    sequence_map = live.gate(outcome.displacement_um, push_index=push_index, lateral_mm=lateral_mm)
    return check_uncertainty(outcome.qc, sequence_map.roi_sigma, settings=plan.qc), sequence_map


def safe_state(devices: RigDevices, *, clearance_z_m: float) -> None:
    """Probe lifted clear and the arm at rest; best effort, whatever state the devices are in."""
    limits = devices.rig.robot.limits
    if devices.robot.is_protective_stopped():
        return
    devices.robot.stop()
    lift_clear(devices.robot, clearance_z_m=clearance_z_m, speed_m_s=limits.max_speed_m_s, accel_m_s2=limits.max_accel_m_s2)


def _run_name() -> str:
    return started_name(f"campaign {parameter_name('plan', load_campaign_plan)}")


@flow(name="swei-campaign", flow_run_name=_run_name, log_prints=True)
def campaign_flow(rig: Rig | Path, plan: CampaignPlan | Path, endpoints: Endpoints | None = None,
                  max_positions: int | None = None) -> CampaignSummary:
    """Acquire every block (or inclusion phantom) of the plan; resumes an interrupted campaign.

    ``rig`` and ``plan``: the models, or the paths of their files. ``endpoints``: a running twin to use;
    without, the rig file says what to bring up (a twin process, the in-process simulation) or which
    hardware to connect to. ``max_positions`` stops each block after that many positions.
    """
    logger = get_run_logger()
    rig, plan = as_model(rig, load_rig), as_model(plan, load_campaign_plan)
    tags = run_tags(rig, plan.name, (b.batch_id for b in plan.blocks))
    tag_flow_run(tags)
    labels = {block.name: block_label(plan, block) for block in plan.blocks}
    n_positions = min(plan.n_positions, max_positions or plan.n_positions)
    # The latest model maps each position beside the acquisition (and gates QC, and picks adaptive positions).
    live = LiveMapping(LatestModel(plan.checkpoint), live_url=settings().live_url) if plan.checkpoint else None
    positions: list[PositionSummary] = []
    sessions: list[str] = []
    steps = len(plan.blocks) * n_positions
    progress = Progress(f"campaign {plan.name}", total=steps)
    with rig_backend(rig, endpoints) as backend, hold_devices(rig, ACQUISITION_DEVICES), stand_in_for(backend) as stand_in, \
            prefect_tags(*tags):
        # The controller will not run the control script in a protective stop: the robot cannot
        # even be connected before the stop is unlocked.
        release_protective_stop(rig, backend, confirm=operator_for(stand_in).confirm)
        with open_devices(rig, backend, ACQUISITION_DEVICES, stand_in=stand_in) as devices:
            top = max(plan.table_z_mm + b.size_mm[2] for b in plan.blocks) * 1e-3
            clear_z = top + plan.contact.lift_clearance_mm * 1e-3
            devices.robot.set_watchdog(rig.robot.limits.watchdog_hz)
            try:
                safe_state(devices, clearance_z_m=clear_z)
                for block in plan.blocks:
                    path = session_path(plan, block).resolve()
                    sessions.append(str(path))
                    info = session_info(plan, block, rig)
                    with SessionWriter.open(path, session=info, resume=True) as writer:
                        maps = live.session(path, info) if live is not None else None
                        where = position_strategy(plan, block, maps)
                        for index in range(min(n_positions, where.count)):
                            xy_mm = np.array(where.position(index))
                            position = acquire_position(devices, writer, plan, block, index, xy_mm, labels[block.name], maps)
                            where.done(index)
                            positions.append(position)
                            progress.advance(f"{block.batch_id} position {index}")
                    logger.info("block %s: session %s", block.name, path)
            finally:
                safe_state(devices, clearance_z_m=clear_z)
                if live is not None:
                    live.close()
    summary = CampaignSummary(plan=plan.name, rig=rig.name, sessions=sessions, positions=positions,
                              calibration_ids={block.batch_id: labels[block.name].calibration_id for block in plan.blocks})
    publish_campaign(summary)
    return summary
