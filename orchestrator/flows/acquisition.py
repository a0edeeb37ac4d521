"""SWEI acquisition campaigns: probe positions on a phantom, 7 (block) or 9 (inclusion) pushes each.

At each position: contact at 0.2 N under force control, then per push fire, track, check quality,
and write the sequence; a failed check (or a shot the scanner refuses) is re-acquired up to
``qc.max_attempts`` times, then recorded as failed with its reason and the campaign carries on.
Rerunning a campaign resumes it: completed sequences stay, only missing ones are acquired, and a
protective stop left by the interrupted run is unlocked after an operator check. Any error,
cancellation or crash path lifts the probe clear; the robot's watchdog stops the arm if this process
dies.

A campaign fans out over several rigs (or twins) as shares: share ``k`` of ``n`` acquires the positions
whose index is ``k`` modulo ``n``, into a session file of its own (``<plan>_<block>_share<k>of<n>.h5``)
that the ``Catalogue`` merges with the others. Each share is the same flow, with the same device locks
and the same resume, run on its own rig: by ``fanout_campaign_flow`` from one process (the physics of
a twin runs in the twin's own process), or on a lab's rig PCs by a work pool with one worker per rig
(``orchestrator/deployments.py``, README "Scaling out").

With a ``checkpoint`` in the plan, the latest model maps every push beside the acquisition and each
position is published as it completes (``live_maps``: files for ``shearlab live``, a Prefect artifact);
its uncertainty is one more QC check, and ``strategy = "adaptive"`` places the probe where it is least
sure (``position_strategy``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
from prefect import flow, get_run_logger, task
from prefect import tags as prefect_tags
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner
from pydantic import Field, computed_field, model_validator

from shearlab.datasets.records import Label, QcResult, SequenceRecord, SessionInfo, sequence_key
from shearlab.datasets.writer import SessionWriter
from shearlab.devices.connect import RigBackend, RigDevices, open_devices, release_protective_stop, rig_backend, stand_in_for
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.interfaces import DeviceName
from shearlab.devices.stand_in import StandIn
from shearlab.orchestrator.calibration_records import load_record
from shearlab.orchestrator.first_failure import then_always
from shearlab.orchestrator.live_maps import LatestModel, LiveMapping, SequenceMap, SessionMaps
from shearlab.orchestrator.locks import hold_devices
from shearlab.orchestrator.operator import operator_for
from shearlab.orchestrator.position_strategy import position_strategy
from shearlab.orchestrator.procedures.contact import lift_clear, make_contact
from shearlab.orchestrator.procedures.qc import QcVerdict, check_uncertainty
from shearlab.orchestrator.procedures.sequence import SequenceOutcome, Shot, assess, shoot
from shearlab.orchestrator.progress import Progress
from shearlab.orchestrator.recovery import RECOVERABLE, FaultPolicy, Site, ask_operator
from shearlab.orchestrator.reports import publish_campaign
from shearlab.orchestrator.retries import DEVICE_RETRY_DELAYS_S, retry_transient_device_errors
from shearlab.orchestrator.run_labels import as_model, parameter_name, run_tags, started_name, tag_flow_run
from shearlab.orchestrator.settings import settings
from shearlab.protocols.plan_on_rig import ensure_fits
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
    # Left out by the operator after a fault ("block_10p0 position 3"); a rerun acquires them.
    skipped_positions: list[str] = []

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


class CampaignShare(StrictModel):
    """Share ``index`` (0-based) of ``of``: the positions whose index is ``index`` modulo ``of``."""

    index: int = Field(ge=0)
    of: int = Field(ge=1)

    @model_validator(mode="after")
    def _check(self) -> CampaignShare:
        if self.index >= self.of:
            raise ValueError(f"share index {self.index} must be below the number of shares {self.of}")
        return self

    @property
    def suffix(self) -> str:
        return f"_share{self.index + 1}of{self.of}"

    def holds(self, position_index: int) -> bool:
        return position_index % self.of == self.index


def _session_name(plan: CampaignPlan, block: BlockTarget, share: CampaignShare | None) -> str:
    return f"{plan.name}_{block.name}{share.suffix if share else ''}"


def session_info(plan: CampaignPlan, block: BlockTarget, rig: Rig | None, share: CampaignShare | None = None) -> SessionInfo:
    return SessionInfo(
        kind=plan.kind, session_id=_session_name(plan, block, share), phantom=block.name, batch_id=block.batch_id,
        concentration_pct=block.concentration_pct, rig_name=rig.name if rig else "rig",
        rig=rig.model_dump(mode="json") if rig else {},
        sequence=SequenceSpec(probe=plan.probe, imaging=plan.imaging), store_iq=plan.store_iq,
        plan={"campaign": plan.name, "seed": plan.seed, "n_positions": plan.n_positions,
              "push_lateral_mm": list(plan.push_lateral_mm), "block": block.model_dump(mode="json")},
    )


def session_path(plan: CampaignPlan, block: BlockTarget, share: CampaignShare | None = None) -> Path:
    return plan.out_dir / f"{_session_name(plan, block, share)}.h5"


def campaign_preflight(rig: Rig | Path, plan: CampaignPlan | Path) -> tuple[Rig, CampaignPlan, dict[str, Label]]:
    """Everything a campaign checks before a device moves: the rig and the plan (models, or files to load),
    the plan within the rig's limits, a calibration record for every block; the labels by block name."""
    plan_file, rig_file = (plan if isinstance(plan, Path | str) else None), (rig if isinstance(rig, Path | str) else None)
    rig, plan = as_model(rig, load_rig), as_model(plan, load_campaign_plan)
    ensure_fits(plan, rig, plan_file=plan_file, rig_file=rig_file)
    return rig, plan, {block.name: block_label(plan, block) for block in plan.blocks}


def block_label(plan: CampaignPlan, block: BlockTarget) -> Label:
    record = load_record(plan.calibration_dir, block.batch_id)
    # The block is another sample of the batch: its label carries the spread between samples.
    return Label(e_kpa=record.e_kpa, e_kpa_std=record.sample_sd_kpa, calibration_id=record.calibration_id)


def _sequence_record(plan: CampaignPlan, position_index: int, push_index: int, lateral_mm: float, attempt: int,
                     pose: np.ndarray, outcome: SequenceOutcome, label: Label | None) -> SequenceRecord:
    failed = not outcome.qc.passed
    return SequenceRecord(
        key=sequence_key(position_index, push_index), position_index=position_index, push_index=push_index,
        push_lateral_mm=lateral_mm, probe_pose=pose,
        displacement_um=None if outcome.displacement_um is None else outcome.displacement_um.astype(np.float32),
        contact_force_n=outcome.force_n, contact_force_time_s=outcome.force_time_s,
        acquired_at=datetime.now(UTC).isoformat(),
        qc=QcResult(passed=outcome.qc.passed, reason=outcome.qc.reason, figures=outcome.qc.figures),
        label=None if failed else label, iq=outcome.iq[1:] if plan.store_iq and outcome.iq is not None else None,
        attempt=attempt, failed=failed, failure_reason=outcome.qc.reason if failed else "",
    )


@task(name="acquire-position", task_run_name="{block.batch_id} position {position_index}",
      retries=len(DEVICE_RETRY_DELAYS_S), retry_delay_seconds=DEVICE_RETRY_DELAYS_S,
      retry_condition_fn=retry_transient_device_errors, cache_policy=NO_CACHE)
def acquire_position(devices: RigDevices, writer: SessionWriter, plan: CampaignPlan, block: BlockTarget,
                     position_index: int, xy_mm: np.ndarray, label: Label | None,
                     live: SessionMaps | None = None) -> PositionSummary:
    """Contact, then every push of this position that the session does not hold yet; lift.

    Shots and their assessment overlap: shot ``k + 1`` is fired while shot ``k`` is tracked and checked
    on a helper thread; a shot that fails its check is fired again next (up to ``qc.max_attempts``),
    and each sequence is written, in the main thread, once its last attempt is assessed. With ``live``,
    each written push is mapped beside the acquisition (and first judged by its map's uncertainty, on the
    helper thread, when the QC's uncertainty gate is on) and the position is published once its pushes
    are written.
    """
    done = writer.completed_keys()
    pending = [(k, x) for k, x in enumerate(plan.push_lateral_mm, start=1) if sequence_key(position_index, k) not in done]
    written, reacquired, failures = 0, 0, []
    summary = partial(PositionSummary, block=block.name, batch_id=block.batch_id, position=position_index,
                      x_mm=float(xy_mm[0]), y_mm=float(xy_mm[1]), skipped=len(plan.push_lateral_mm) - len(pending))
    if not pending:
        return summary()
    # Before the probe moves: the last position's sequences are on disk, and a position the disk has no
    # room for is not begun.
    writer.sync()
    writer.ensure_room(len(pending))
    robot, sensor, scanner, clock = devices.robot, devices.probe_ft, devices.scanner, devices.clock
    limits = devices.rig.robot.limits
    surface = np.array([xy_mm[0] * 1e-3, xy_mm[1] * 1e-3, (plan.table_z_mm + block.size_mm[2]) * 1e-3])
    clear_z = surface[2] + plan.contact.lift_clearance_mm * 1e-3
    lift = partial(lift_clear, robot, clearance_z_m=clear_z, speed_m_s=limits.max_speed_m_s, accel_m_s2=limits.max_accel_m_s2)
    # (push index, lateral mm, attempt) still to shoot; a shot failing its check goes back to the front.
    queue = [(k, x, 1) for k, x in pending]
    in_flight: tuple[int, float, int, Future[tuple[SequenceOutcome, SequenceMap | None]]] | None = None
    with then_always(lift, what="lifting the probe clear"):
        contact = make_contact(robot, sensor, clock, surface_xyz_m=surface, settings=plan.contact,
                               max_force_n=limits.max_contact_force_n, speed_m_s=limits.max_speed_m_s,
                               accel_m_s2=limits.max_accel_m_s2)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="assess") as assessor:
            # Each shot is assessed (Loupas, quality gate, uncertainty) while the scanner makes the next one.
            while queue or in_flight is not None:
                shot = None
                if queue:
                    push_index, lateral_mm, attempt = queue.pop(0)
                    sequence = SequenceSpec(probe=plan.probe, push=PushSpec(lateral_mm=lateral_mm), imaging=plan.imaging)
                    shot = (push_index, lateral_mm, attempt, shoot(robot, sensor, scanner, clock, sequence))
                if in_flight is not None:
                    done_push, done_lateral, done_attempt, future = in_flight
                    outcome, sequence_map = future.result()
                    if not outcome.qc.passed and done_attempt < plan.qc.max_attempts:
                        queue.insert(0, (done_push, done_lateral, done_attempt + 1))
                    else:
                        failed = not outcome.qc.passed
                        reacquired += done_attempt - 1
                        record = _sequence_record(plan, position_index, done_push, done_lateral, done_attempt,
                                                  contact.pose, outcome, label)
                        writer.append_sequence(record)
                        if live is not None:
                            live.add(record, sequence_map)
                        if failed:
                            failures.append(outcome.qc.check)
                        else:
                            written += 1
                in_flight = None if shot is None else (*shot[:3], assessor.submit(
                    _assess_and_judge, shot[3], plan, live, shot[0], shot[1]))
    if live is not None:
        live.position_done(position_index, (float(xy_mm[0]), float(xy_mm[1])))
    return summary(written=written, failed=len(failures), reacquired=reacquired, failures=tuple(failures))


def _assess_and_judge(shot: Shot, plan: CampaignPlan, live: SessionMaps | None, push_index: int,
                      lateral_mm: float) -> tuple[SequenceOutcome, SequenceMap | None]:
    """The shot's signal checks, then the uncertainty gate's verdict on the push's map (made now) when it is on."""
    outcome = assess(shot, target_force_n=plan.contact.target_force_n, qc=plan.qc)
    if live is None or not plan.qc.uncertainty_gate or not outcome.qc.passed or outcome.displacement_um is None:
        return outcome, None
    if not live.mapping.model.current().has_sigma:
        return outcome, None
    sequence_map = live.gate(outcome.displacement_um, push_index=push_index, lateral_mm=lateral_mm)
    verdict: QcVerdict = check_uncertainty(outcome.qc, sequence_map.roi_sigma, settings=plan.qc)
    return replace(outcome, qc=verdict), sequence_map


def safe_state(devices: RigDevices, *, clearance_z_m: float) -> None:
    """Probe lifted clear and the arm at rest; best effort, whatever state the devices are in."""
    limits = devices.rig.robot.limits
    if devices.robot.is_protective_stopped():
        return
    devices.robot.stop()
    lift_clear(devices.robot, clearance_z_m=clearance_z_m, speed_m_s=limits.max_speed_m_s, accel_m_s2=limits.max_accel_m_s2)


def _run_name() -> str:
    return started_name(f"campaign {parameter_name('plan', load_campaign_plan)}")


@dataclass
class CampaignRun:
    """A campaign run's progress across the attempts a fault may cost it: what is done, what the operator
    skipped, where it is now."""

    rig: Rig
    plan: CampaignPlan
    labels: dict[str, Label]
    mine: tuple[int, ...]  # the position indices this run acquires (its share of them)
    share: CampaignShare | None
    progress: Progress
    positions: list[PositionSummary] = field(default_factory=list)
    sessions: dict[str, None] = field(default_factory=dict)
    done: set[tuple[str, int]] = field(default_factory=set)
    skipped: set[tuple[str, int]] = field(default_factory=set)
    live: LiveMapping | None = None
    site: Site = field(default_factory=Site)


@flow(name="swei-campaign", flow_run_name=_run_name, log_prints=True)
def campaign_flow(rig: Rig | Path, plan: CampaignPlan | Path, endpoints: Endpoints | None = None,
                  max_positions: int | None = None, on_fault: FaultPolicy = "stop",
                  share: CampaignShare | None = None) -> CampaignSummary:
    """Acquire every block (or inclusion phantom) of the plan; resumes an interrupted campaign.

    ``rig`` and ``plan``: the models, or the paths of their files. ``endpoints``: a running twin to use;
    without, the rig file says what to bring up (a twin process, the in-process simulation) or which
    hardware to connect to. ``max_positions`` stops each block after that many positions. ``on_fault``:
    ``"stop"`` ends the run at a device fault, safely; ``"ask"`` pauses it with a form for the operator at the
    Prefect UI (``orchestrator.recovery``). ``share``: acquire only that share of the positions, into the
    share's own session files.
    """
    rig, plan, labels = campaign_preflight(rig, plan)
    tags = run_tags(rig, plan.name, (b.batch_id for b in plan.blocks))
    tag_flow_run(tags)
    n_positions = min(plan.n_positions, max_positions or plan.n_positions)
    mine = tuple(i for i in range(n_positions) if share is None or share.holds(i))
    # The latest model maps each position beside the acquisition (and gates QC, and picks adaptive positions).
    live = LiveMapping(LatestModel(plan.checkpoint), live_url=settings().live_url) if plan.checkpoint else None
    run = CampaignRun(rig, plan, labels, mine, share, Progress(f"campaign {plan.name}", total=len(plan.blocks) * len(mine)),
                      live=live)
    # The devices are held before a twin is started for them: a second run for the same twin waits here.
    with hold_devices(rig, ACQUISITION_DEVICES, endpoints), rig_backend(rig, endpoints) as backend, \
            stand_in_for(backend) as stand_in, prefect_tags(*tags):
        confirm = operator_for(stand_in).confirm
        try:
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
                    if action == "skip" and run.site.position >= 0:
                        run.skipped.add(run.site.key)
                        run.progress.advance(f"{run.site.block} position {run.site.position} skipped")
                    # The operator has just looked at the rig: a protective stop is unlocked without asking twice.
                    confirm = _confirmed_by_the_fault_form
        finally:
            if live is not None:
                live.close()
    summary = CampaignSummary(plan=plan.name, rig=rig.name, sessions=list(run.sessions), positions=run.positions,
                              calibration_ids={block.batch_id: labels[block.name].calibration_id for block in plan.blocks},
                              skipped_positions=[f"{block} position {index}" for block, index in sorted(run.skipped)])
    publish_campaign(summary)
    return summary


def _confirmed_by_the_fault_form(message: str) -> None:
    get_run_logger().warning("operator check (confirmed in the fault form): %s", message)


def _acquire(run: CampaignRun, backend: RigBackend, stand_in: StandIn | None, confirm: Callable[[str], None]) -> None:
    """Connect the devices and acquire every position not done (or skipped) yet; the probe lifted however it ends."""
    rig, plan = run.rig, run.plan
    run.site = Site()  # connecting the devices, at no position yet
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
                path = session_path(plan, block, run.share).resolve()
                run.sessions[str(path)] = None
                info = session_info(plan, block, rig, run.share)
                with SessionWriter.open(path, session=info, resume=True) as writer:
                    maps = run.live.session(path, info) if run.live is not None else None
                    where = position_strategy(plan, block, maps)
                    for index in (i for i in run.mine if i < where.count):
                        # Asked in order even where nothing is left to do: adaptive picks replay their history.
                        xy_mm = np.array(where.position(index))
                        if (block.name, index) in run.skipped:
                            continue
                        if (block.name, index) not in run.done:
                            run.site = Site(block.name, index)
                            run.positions.append(acquire_position(devices, writer, plan, block, index, xy_mm,
                                                                  run.labels[block.name], maps))
                            run.done.add(run.site.key)
                            run.progress.advance(f"{block.batch_id} position {index}")
                        where.done(index)
                get_run_logger().info("block %s: session %s", block.name, path)


@task(name="campaign-share", task_run_name="share {share.index} of {share.of}", cache_policy=NO_CACHE)
def _campaign_share(rig: Rig | Path, plan: CampaignPlan, endpoints: Endpoints | None, max_positions: int | None,
                    on_fault: FaultPolicy, share: CampaignShare) -> CampaignSummary:
    # Imported here: the worker process then runs the module's flow, not a copy pickled by value without
    # the module's names.
    from shearlab.orchestrator.flows.acquisition import campaign_flow

    return campaign_flow(rig=rig, plan=plan, endpoints=endpoints, max_positions=max_positions, on_fault=on_fault,
                         share=share)


@flow(name="swei-campaign-fanout", flow_run_name=_run_name, log_prints=True,
      task_runner=ProcessPoolTaskRunner(max_workers=16))  # type: ignore[arg-type]
def fanout_campaign_flow(rigs: Sequence[Rig | Path], plan: CampaignPlan | Path,
                         endpoints: Sequence[Endpoints] | None = None,
                         max_positions: int | None = None, on_fault: FaultPolicy = "stop") -> CampaignSummary:
    """One campaign drained by several rigs at once: rig ``k`` of ``n`` acquires share ``k`` of ``n``.

    Each share is a ``campaign_flow`` run (a subflow in a worker process of its own: on threads of one
    process a second-long stall of the shared interpreter starved another robot's 50 ms watchdog kicks,
    measured, and the robot latched a protective stop) with its rig's locks and its own session files; rerun,
    each share resumes. ``endpoints``: one running twin per rig, or None. Returns every share's
    summary merged (the catalogue merges their session files the same way).
    """
    plan = as_model(plan, load_campaign_plan)
    if plan.strategy == "adaptive":
        raise ValueError('strategy = "adaptive" picks each position from the ones before it: run it on one rig')
    if not rigs:
        raise ValueError("fanout_campaign_flow needs at least one rig")
    if endpoints is not None and len(endpoints) != len(rigs):
        raise ValueError(f"{len(endpoints)} endpoints for {len(rigs)} rigs: give one per rig, or none")
    futures = [_campaign_share.submit(rig, plan, None if endpoints is None else endpoints[k], max_positions, on_fault,
                                      CampaignShare(index=k, of=len(rigs))) for k, rig in enumerate(rigs)]
    summaries = [f.result() for f in futures]
    return CampaignSummary(plan=plan.name, rig="+".join(s.rig for s in summaries),
                           sessions=[path for s in summaries for path in s.sessions],
                           calibration_ids={k: v for s in summaries for k, v in s.calibration_ids.items()},
                           positions=sorted((p for s in summaries for p in s.positions),
                                            key=lambda p: (p.block, p.position)),
                           skipped_positions=[p for s in summaries for p in s.skipped_positions])
