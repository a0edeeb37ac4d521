"""Indentation calibration flow: every cylinder of every batch, then one stress-strain fit per batch.

The fit becomes a calibration record (JSON, with an id) that acquisitions take their labels from;
the raw logs and the fit go to one calibration session file per batch. Rerunning the flow resumes:
cylinders already logged in the session file are not indented again (a cylinder is used once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prefect import flow, get_run_logger, task
from prefect import tags as prefect_tags
from prefect.cache_policies import NO_CACHE

from shearlab.datasets.reader import SessionReader
from shearlab.datasets.records import CalibrationFit, IndentationRecord, SessionInfo
from shearlab.datasets.writer import SessionWriter
from shearlab.devices.connect import RigDevices, open_devices, rig_backend, stand_in_for
from shearlab.devices.endpoints import Endpoints
from shearlab.orchestrator.calibration_records import save_record
from shearlab.orchestrator.figures import save_png, stress_strain_figure
from shearlab.orchestrator.first_failure import then_always
from shearlab.orchestrator.locks import hold_devices
from shearlab.orchestrator.operator import Operator, operator_for
from shearlab.orchestrator.procedures.indentation import indent
from shearlab.orchestrator.progress import Progress
from shearlab.orchestrator.reports import publish_calibration
from shearlab.orchestrator.retries import DEVICE_RETRY_DELAYS_S, retry_transient_device_errors
from shearlab.orchestrator.run_labels import as_model, parameter_name, run_tags, started_name, tag_flow_run
from shearlab.protocols.phantoms import Cylinder
from shearlab.protocols.plan_on_rig import ensure_fits
from shearlab.protocols.plans import CalibrationBatch, CalibrationPlan, load_calibration_plan
from shearlab.protocols.rig import Rig, load_rig
from shearlab.protocols.stress_strain import CompressionRun, fit_modulus


@task(name="indent-cylinder", task_run_name="{cylinder.batch_id} cylinder {cylinder.index}",
      retries=len(DEVICE_RETRY_DELAYS_S), retry_delay_seconds=DEVICE_RETRY_DELAYS_S,
      retry_condition_fn=retry_transient_device_errors, cache_policy=NO_CACHE)
def indent_cylinder(devices: RigDevices, operator: Operator, cylinder: Cylinder, plan: CalibrationPlan, writer: SessionWriter) -> str:
    """Operator places the cylinder; one indentation; the raw log goes to the session file."""
    operator.place_cylinder(cylinder)
    started = datetime.now(UTC).isoformat()
    log = indent(devices.hexapod, devices.indenter_ft, devices.clock, plan.indentation, devices.rig.hexapod.limits,
                 length_mm=cylinder.length_mm)
    contact = int(np.argmax(log.plate_z_mm <= log.touch_z_mm)) if np.any(log.plate_z_mm <= log.touch_z_mm) else -1
    writer.append_indentation_run(IndentationRecord(
        cylinder_index=cylinder.index, batch_id=cylinder.batch_id, time_s=log.time_s, force_n=log.force_n,
        plate_z_mm=log.plate_z_mm, contact_index=contact, stop_reason=log.stop_reason,
        concentration_pct=cylinder.concentration_pct, started_at=started,
        extra={"touch_z_mm": log.touch_z_mm, "radius_mm": cylinder.radius_mm, "length_mm": cylinder.length_mm},
    ))
    operator.clear_indenter()
    return log.stop_reason


def compression_runs(runs: list[IndentationRecord]) -> list[CompressionRun]:
    """The logged runs of a calibration session as compressions, from first touch on."""
    return [CompressionRun.from_log(run.plate_z_mm, run.force_n, touch_z_mm=float(run.extra["touch_z_mm"]),
                                    radius_mm=float(run.extra["radius_mm"]), length_mm=float(run.extra["length_mm"]))
            for run in runs]


def new_calibration_id(batch_id: str, fitted_at: datetime, taken: set[str]) -> str:
    """``cal-<batch>-<UTC second>``, with ``-2``, ``-3``... when a refit lands in a second already used."""
    base = f"cal-{batch_id}-{fitted_at:%Y%m%dT%H%M%S}"
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


@task(name="fit-batch", task_run_name="fit {batch.batch_id}", cache_policy=NO_CACHE)
def fit_batch(batch: CalibrationBatch, plan: CalibrationPlan, session_path: Path) -> CalibrationFit:
    with SessionReader(session_path) as reader:
        runs = compression_runs(reader.indentation_runs())
        taken = {f.calibration_id for f in reader.calibration_fits()}
    fit = fit_modulus(runs, strain_range=plan.indentation.strain_range)
    now = datetime.now(UTC)
    record = CalibrationFit(
        calibration_id=new_calibration_id(batch.batch_id, now, taken),
        batch_id=batch.batch_id, concentration_pct=batch.concentration_pct, e_kpa=fit.e_kpa,
        ci95_kpa=(fit.e_kpa - fit.ci95_kpa, fit.e_kpa + fit.ci95_kpa), cylinders=len(fit.cylinder_e_kpa), sample_sd_kpa=fit.sample_sd_kpa,
        n_points=fit.n_points, r2=fit.r2, strain_min=fit.strain_range[0], strain_max=fit.strain_range[1],
        fitted_at=now.isoformat(),
        extra={"runs": len(runs), "intercept_kpa": fit.intercept_kpa, "cylinder_e_kpa": list(fit.cylinder_e_kpa),
               "session": str(session_path)},
    )
    with SessionWriter.open(session_path, session=_session_info(batch, plan, None), resume=True) as writer:
        writer.write_calibration_fit(record)
    save_record(plan.out_dir, record)
    save_png(stress_strain_figure(runs, record), plan.out_dir / f"stress_strain_{batch.batch_id}.png")
    return record


def _session_info(batch: CalibrationBatch, plan: CalibrationPlan, rig: Rig | None) -> SessionInfo:
    return SessionInfo(
        kind="calibration", session_id=f"calibration_{batch.batch_id}", phantom=f"cylinders of batch {batch.batch_id}",
        batch_id=batch.batch_id, concentration_pct=batch.concentration_pct,
        rig_name=rig.name if rig else "rig", rig=rig.model_dump(mode="json") if rig else {},
        plan={"cylinders": batch.cylinders, "indentation": plan.indentation.model_dump(mode="json")},
    )


def session_path(plan: CalibrationPlan, batch: CalibrationBatch) -> Path:
    return plan.out_dir / f"calibration_{batch.batch_id}.h5"


def _run_name() -> str:
    return started_name(f"calibration {parameter_name('plan', load_calibration_plan)}")


@flow(name="indentation-calibration", flow_run_name=_run_name, log_prints=True)
def calibration_flow(rig: Rig | Path, plan: CalibrationPlan | Path, endpoints: Endpoints | None = None) -> list[CalibrationFit]:
    """Indent every cylinder of every batch in the plan and fit one modulus per batch.

    ``rig`` and ``plan``: the models, or the paths of their files; ``endpoints``: a running twin to use.
    """
    logger = get_run_logger()
    plan_file = plan if isinstance(plan, Path | str) else None
    rig, plan = as_model(rig, load_rig), as_model(plan, load_calibration_plan)
    # Before any device moves: the plan within the rig's hexapod limits.
    ensure_fits(plan, rig, plan_file=plan_file)
    tags = run_tags(rig, plan.name, (b.batch_id for b in plan.batches))
    tag_flow_run(tags)
    records: list[CalibrationFit] = []
    sessions: list[str] = []
    progress = Progress(f"calibration {plan.name}", total=sum(b.cylinders for b in plan.batches))
    # The devices are held before a twin is started for them: a second run for the same twin waits here.
    with hold_devices(rig, ("hexapod", "indenter_ft"), endpoints), rig_backend(rig, endpoints) as backend, prefect_tags(*tags), \
            stand_in_for(backend) as stand_in, open_devices(rig, backend, ("hexapod", "indenter_ft"), stand_in=stand_in) as devices:
        operator = operator_for(devices.stand_in)
        with then_always(devices.hexapod.halt, what="halting the hexapod"):
            for batch in plan.batches:
                path = session_path(plan, batch).resolve()
                sessions.append(str(path))
                with SessionWriter.open(path, session=_session_info(batch, plan, rig), resume=True) as writer:
                    done = writer.completed_indentation_runs()
                    for index in range(batch.cylinders):
                        if index not in done:
                            cylinder = Cylinder(batch_id=batch.batch_id, concentration_pct=batch.concentration_pct,
                                                index=index, radius_mm=batch.radius_mm, length_mm=batch.length_mm)
                            reason = indent_cylinder(devices, operator, cylinder, plan, writer)
                            logger.info("batch %s cylinder %d: %s", batch.batch_id, index, reason)
                        progress.advance(f"{batch.batch_id} cylinder {index}")
                record = fit_batch(batch, plan, path)
                logger.info("batch %s: E = %.2f kPa (95 %% CI %.2f-%.2f, R2 %.4f), id %s", batch.batch_id, record.e_kpa,
                            *record.ci95_kpa, record.r2, record.calibration_id)
                records.append(record)
    publish_calibration(plan.name, records, sessions)
    return records
