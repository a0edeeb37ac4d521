"""The commands that run flows: ``calibrate``, ``acquire``, ``serve``, ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from shearlab.orchestrator.cli.errors import ExitCode, UserError
from shearlab.orchestrator.cli.output import emit, record_table, rows_table, say
from shearlab.orchestrator.cli.rig_commands import EndpointsFile, JsonFlag, read_endpoints
from shearlab.orchestrator.cli.runtime import flow_progress, quiet_console

app = typer.Typer(rich_markup_mode=None)

RigArgument = Annotated[Path, typer.Argument(help="Rig file (TOML).", metavar="RIGFILE", show_default=False)]


@app.command("calibrate")
def calibrate(
    rigfile: RigArgument,
    planfile: Annotated[Path, typer.Argument(help="Calibration plan (TOML).", metavar="PLANFILE", show_default=False)],
    endpoints: EndpointsFile = None,
    json_output: JsonFlag = False,
) -> None:
    """Indentation calibration: every cylinder of every batch in PLANFILE, one modulus per batch (resumes)."""
    from shearlab.orchestrator.runs import run_calibration
    from shearlab.protocols.plan_on_rig import load_calibration_on_rig

    # Both files, and the plan against the rig, are checked before Prefect starts (its first start takes ~20 s).
    load_calibration_on_rig(rigfile, planfile)
    with flow_progress("calibration"):
        records = run_calibration(planfile, rigfile, endpoints=read_endpoints(endpoints))
    rows = [{"batch_id": r.batch_id, "concentration_pct": r.concentration_pct, "e_kpa": r.e_kpa, "ci95_kpa": list(r.ci95_kpa),
             "r2": r.r2, "cylinders": r.cylinders, "calibration_id": r.calibration_id} for r in records]
    emit(rows, rows_table("calibration records", rows), as_json=json_output)


@app.command("acquire")
def acquire(
    rigfile: RigArgument,
    planfile: Annotated[Path, typer.Argument(help="Campaign plan (TOML).", metavar="PLANFILE", show_default=False)],
    max_positions: Annotated[int | None, typer.Option(help="Stop after this many positions per block.", min=1)] = None,
    on_fault: Annotated[Literal["stop", "ask"], typer.Option(
        help="stop: a device fault ends the run, the rig safe; ask: the run pauses with a form in the Prefect UI "
             "(retry the position, skip it, abort).")] = "stop",
    endpoints: EndpointsFile = None,
    json_output: JsonFlag = False,
) -> None:
    """SWEI acquisition campaign (blocks or inclusion phantoms); rerun to resume."""
    from shearlab.orchestrator.flows.acquisition import campaign_preflight
    from shearlab.orchestrator.runs import run_campaign

    # The files, the plan against the rig and the calibration records, before Prefect starts.
    campaign_preflight(rigfile, planfile)
    with flow_progress("campaign"):
        summary = run_campaign(planfile, rigfile, endpoints=read_endpoints(endpoints), max_positions=max_positions,
                               on_fault=on_fault)
    report = summary.model_dump(mode="json")
    totals = {k: v for k, v in report.items() if k != "positions"}
    emit(report, [record_table(f"campaign {summary.plan}", totals),
                  rows_table("positions", report["positions"])], as_json=json_output)


@app.command("serve")
def serve_flows(
    rig: Annotated[Path | None, typer.Option(
        help="Acquisition rig file (UR3, Nano43, scanner); default: $SHEARLAB_RIG, else the shipped twin rig.")] = None,
    indentation_rig: Annotated[Path | None, typer.Option(
        help="Indentation rig file (hexapod, Nano17); default: $SHEARLAB_INDENTATION_RIG, else the shipped one.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="Calibration plan to serve.")] = None,
    blocks: Annotated[Path | None, typer.Option(help="Block campaign plan to serve.")] = None,
    inclusions: Annotated[Path | None, typer.Option(help="Inclusion campaign plan to serve.")] = None,
    training: Annotated[Path | None, typer.Option(help="Training plan to serve.")] = None,
) -> None:
    """Register a deployment for each plan given (only those) and serve them from this process, on the
    schedules of their plan files' ``cron``; Ctrl-C stops."""
    from prefect import serve

    from shearlab.orchestrator.deployments import ServeConfig, build_deployments
    from shearlab.orchestrator.settings import settings

    if not any((calibration, blocks, inclusions, training)):
        raise UserError("nothing to serve: give at least one of --calibration, --blocks, --inclusions, --training",
                        ExitCode.USAGE)
    config = ServeConfig(rig or settings().rig, indentation_rig or settings().indentation_rig,
                         calibration, blocks, inclusions, training)
    deployments = build_deployments(config)
    quiet_console()
    serve(*deployments)


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


@app.command("demo")
def demo(
    out: Annotated[Path | None, typer.Option(
        help="Folder for sessions, models, figures and the report; default: $SHEARLAB_OUT/demo (out/demo).")] = None,
    scale: Annotated[Literal["quick", "paper"], typer.Option(
        help="quick: 2 CPU cores, minutes; paper: the paper's protocol (a GPU advisable).")] = "quick",
    world: Annotated[Path | None, typer.Option(help="World file of the twins (TOML); default: the shipped world.")] = None,
    estimate: Annotated[bool, typer.Option(
        "--estimate", help="Print the expected time of each stage on this machine and stop.")] = False,
    loco: Annotated[bool | None, typer.Option(
        "--loco/--no-loco", help="Also train a net without one concentration (protocol b); default: at paper scale only.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Run a whole simulated study on the twins: calibration, campaigns, the CNN against every baseline, report."""
    from shearlab.orchestrator.demo import run_demo
    from shearlab.orchestrator.settings import settings

    if world is not None:
        from shearlab.devices.twin.world_config import load_world

        load_world(world)
    if estimate:
        from shearlab.orchestrator.estimate import estimate_demo

        stages = estimate_demo(scale, world, loco=loco)
        rows = [{"stage": s.stage, "work": s.work, "expected_s": round(s.seconds, 1),
                 "expected": _duration(s.seconds), "basis": s.basis} for s in stages]
        total = sum(s.seconds for s in stages)
        emit({"scale": scale, "stages": rows, "total_s": round(total, 1)},
             [rows_table(f"--scale {scale} on this machine: {_duration(total)} in all", rows)], as_json=json_output)
        return
    folder = out or settings().out / "demo"
    with flow_progress("demo") as progress:
        result = run_demo(folder, scale, lambda stage: progress.console.print(f"stage: {stage}", markup=False), world=world,
                          loco=loco)
    blocks = result["metrics"]["blocks"]
    rows = [{"method": m["label"], "mae_kpa": m["mae_kpa"][0], "mae_low_kpa": m["mae_kpa"][1], "mae_high_kpa": m["mae_kpa"][2],
             "pearson": m["pearson"], "failed_fraction": m["failed_fraction"]} for m in blocks["methods"].values()]
    inclusions = [{"session": session, "threshold_kpa": m["threshold_kpa"],
                   **{f"dice_{key}": method["dice"] for key, method in m["methods"].items()}}
                  for session, m in result["metrics"].get("inclusions", {}).items()]
    tables = [rows_table(f"held-out positions ({blocks['test_sequences']} sequences)", rows)]
    if inclusions:
        tables.append(rows_table("inclusions", inclusions))
    emit({"report": str(result["report"]), "blocks": rows, "inclusions": inclusions}, tables, as_json=json_output)
    if not json_output:
        say(f"report: {result['report']}")
