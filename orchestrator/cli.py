"""The ``shearlab`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shearlab.datasets.cli import app as dataset_app
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.errors import DeviceError
from shearlab.devices.twin.cli import app as twin_commands
from shearlab.protocols.config_files import ConfigFileError
from shearlab.training.cli import app as training_app

app = typer.Typer(help="Robotic ultrasound shear-wave elasticity experiments, end to end.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
rig_app = typer.Typer(help="Rig files and device checks.", no_args_is_help=True)
# ``shearlab twin``: the twin's own commands (``python -m shearlab.devices.twin``), and the realism report,
# which runs the flows on the twin and so belongs up here.
twin_app = typer.Typer(help=twin_commands.info.help, no_args_is_help=True)
twin_app.registered_commands.extend(twin_commands.registered_commands)
app.add_typer(rig_app, name="rig")

console = Console()
err_console = Console(stderr=True)


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


@twin_app.command("realism")
def twin_realism(
    world: Annotated[Path | None, typer.Option(help="World file (TOML); default: the shipped world.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the sessions and realism.md / realism.json.")] = Path("out/realism"),
    sessions: Annotated[Path | None, typer.Option(help="Measure these session files instead of acquiring new ones.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="Calibration records of --sessions (for the cylinder spread).")] = None,
    positions: Annotated[int, typer.Option(help="Probe positions per block when acquiring.", min=2)] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Measure how hard the twin's lab is: acquire a small campaign on every block (or read given
    sessions) and report each effect's magnitude next to its source, and the two shortcut checks."""
    import json
    import os

    # Flow and task logs stay in the Prefect API; the terminal shows the result.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from shearlab.orchestrator import realism
    from shearlab.orchestrator.prefect_runtime import quiet_prefect

    if sessions is None:
        with quiet_prefect():
            sessions, calibration = realism.acquire_sessions(out, world=world, positions=positions)
    report = realism.measure(sessions, calibration, world=world)
    markdown, data = realism.write(report, out)
    if json_output:
        console.print_json(json.dumps(report.to_json()))
        return
    table = Table(title=f"twin realism ({sessions})")
    for column in ("check", "measured", "limit", "verdict"):
        table.add_column(column)
    for check in report.shortcuts:
        table.add_row(f"label from {check.feature}", f"{check.ratio:.2f} x mean predictor ({check.mae_kpa:.1f} kPa)",
                      f">= {realism.MIN_SHORTCUT_RATIO}", "ok" if check.passed else "too predictive")
    median = report.position_correlation["median"]
    table.add_row("same push at two positions", f"median correlation {median:.3f}", f"<= {realism.MAX_POSITION_CORRELATION}",
                  "ok" if median <= realism.MAX_POSITION_CORRELATION else "too alike")
    console.print(table)
    console.print(f"report: {markdown}")


@rig_app.command("check")
def rig_check(rigfile: Annotated[Path, typer.Argument(help="Rig file (TOML).")]) -> None:
    """Connect to every device of RIGFILE and print one status row per device."""
    from shearlab.devices.connect import check_rig, rig_backend
    from shearlab.protocols.rig import load_rig

    rig = load_rig(rigfile)
    with rig_backend(rig) as backend:
        rows = check_rig(rig, backend)
    table = Table(title=f"rig {rig.name} ({rigfile})")
    for column in ("device", "identity", "state", "latency"):
        table.add_column(column)
    failed = False
    for row in rows:
        if isinstance(row, DeviceError):
            failed = True
            table.add_row(row.device, "-", f"[red]{row.message}[/red]", "-")
        else:
            table.add_row(row.name, row.identity, row.state, f"{row.latency_ms:.1f} ms")
    console.print(table)
    if failed:
        raise typer.Exit(1)


@app.command("calibrate")
def calibrate(
    rigfile: Annotated[Path, typer.Argument(help="Rig file (TOML).")],
    planfile: Annotated[Path, typer.Argument(help="Calibration plan (TOML).")],
    endpoints: Annotated[Path | None, typer.Option(help="Use the running twin whose endpoints JSON is in this file.")] = None,
) -> None:
    """Indentation calibration: every cylinder of every batch in PLANFILE, one modulus per batch."""
    from shearlab.orchestrator.flows.calibration import calibration_flow
    from shearlab.orchestrator.prefect_runtime import quiet_prefect
    from shearlab.protocols.plan_on_rig import load_calibration_on_rig

    load_calibration_on_rig(rigfile, planfile)
    with quiet_prefect():
        records = calibration_flow(rig_path=rigfile, plan_path=planfile, endpoints=_read_endpoints(endpoints))
    table = Table(title="calibration records")
    for column in ("batch", "conc. %", "E kPa", "95 % CI kPa", "R2", "id"):
        table.add_column(column)
    for r in records:
        table.add_row(r.batch_id, f"{r.concentration_pct}", f"{r.e_kpa:.2f}", f"{r.ci95_kpa[0]:.2f}-{r.ci95_kpa[1]:.2f}",
                      f"{r.r2:.4f}", r.calibration_id)
    console.print(table)


@app.command("acquire")
def acquire(
    rigfile: Annotated[Path, typer.Argument(help="Rig file (TOML).")],
    planfile: Annotated[Path, typer.Argument(help="Campaign plan (TOML).")],
    max_positions: Annotated[int | None, typer.Option(help="Stop after this many positions per block.")] = None,
    endpoints: Annotated[Path | None, typer.Option(help="Use the running twin whose endpoints JSON is in this file.")] = None,
) -> None:
    """SWEI acquisition campaign (blocks or inclusion phantoms); rerun to resume."""
    from shearlab.orchestrator.flows.acquisition import campaign_flow, campaign_preflight
    from shearlab.orchestrator.prefect_runtime import quiet_prefect

    campaign_preflight(rigfile, planfile)
    with quiet_prefect():
        summary = campaign_flow(rig_path=rigfile, plan_path=planfile, max_positions=max_positions,
                                endpoints=_read_endpoints(endpoints))
    console.print(f"written {summary.written}, failed {summary.failed}, already present {summary.skipped}")
    for session in summary.sessions:
        console.print(f"  {session}")


@app.command("serve")
def serve_flows(
    rig: Annotated[Path, typer.Option(help="Acquisition rig file (UR3, Nano43, scanner).")] = Path("rigs/twin.toml"),
    indentation_rig: Annotated[Path, typer.Option(help="Indentation rig file (hexapod, Nano17).")] = Path("rigs/twin_indentation.toml"),
    calibration: Annotated[Path | None, typer.Option(help="Calibration plan.")] = Path("plans/calibration.toml"),
    blocks: Annotated[Path | None, typer.Option(help="Block campaign plan.")] = Path("plans/blocks.toml"),
    inclusions: Annotated[Path | None, typer.Option(help="Inclusion campaign plan.")] = Path("plans/inclusions.toml"),
    training: Annotated[Path | None, typer.Option(help="Training plan.")] = None,
) -> None:
    """Register the deployments (calibration, block and inclusion campaigns, training) and serve
    them from this process, with the schedules of their plan files; Ctrl-C stops."""
    from prefect import serve

    from shearlab.orchestrator.deployments import ServeConfig, build_deployments

    deployments = build_deployments(ServeConfig(rig, indentation_rig, calibration, blocks, inclusions, training))
    if not deployments:
        raise UserError("nothing to serve: give at least one plan")
    serve(*deployments)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for sessions, models, figures and the report.")] = Path("out/demo"),
    scale: Annotated[str, typer.Option(help="quick (2 CPU cores, minutes) or paper (the paper's protocol; GPU advisable).")] = "quick",
) -> None:
    """Run a whole simulated study on the twins: calibration, campaigns, CNN, ToF, report."""
    import os

    # Flow and task logs stay in the Prefect API (and its UI); the terminal shows the progress bar.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from shearlab.orchestrator.demo import SCALES, run_demo
    from shearlab.orchestrator.prefect_runtime import quiet_prefect

    if scale not in SCALES:
        raise UserError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    stages = ["calibration", "blocks", "inclusions", "training", "done"]
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task("starting", total=len(stages) - 1)

        def on_stage(name: str) -> None:
            progress.update(bar, description=name, completed=stages.index(name))

        with quiet_prefect():
            result = run_demo(out, scale, on_stage)
    blocks = result["metrics"]["blocks"]
    table = Table(title=f"held-out positions ({blocks['test_sequences']} sequences)")
    for column in ("method", "MAE kPa", "std kPa", "Pearson", "failed"):
        table.add_column(column)
    for name in ("cnn", "tof"):
        m = blocks[name]
        table.add_row(name.upper(), f"{m['mae_kpa']:.2f}", f"{m['mae_std_kpa']:.2f}", f"{m['pearson']:.3f}", f"{m['missing_fraction']:.1%}")
    console.print(table)
    for session, m in result["metrics"].get("inclusions", {}).items():
        console.print(f"{session}: Dice CNN {m['cnn']['dice']}, ToF {m['tof']['dice']} at {m['threshold_kpa']:.1f} kPa")
    console.print(f"report: {result['report']}")


def _read_endpoints(path: Path | None) -> Endpoints | None:
    """The endpoints JSON that ``shearlab twin serve --endpoints FILE`` wrote, or ``None``."""
    if path is None:
        return None
    try:
        return Endpoints.model_validate_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read twin endpoints ({exc})") from None


app.add_typer(dataset_app, name="dataset", help="HDF5 session files: info, check, export.")
app.add_typer(twin_app, name="twin")
# ``shearlab train``, ``evaluate`` and ``predict`` are the training package's commands.
app.registered_commands.extend(training_app.registered_commands)


def main() -> None:
    import os

    # The local ephemeral server would phone home for usage telemetry; a lab machine (and CI) has no
    # route out, and the failure shows up as an ERROR line in the middle of a run.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from rich.markup import escape

    from shearlab.datasets.errors import SessionFileError
    from shearlab.protocols.output_files import OutputFileError
    from shearlab.training.checkpoint import CheckpointError

    try:
        app()
    except ConfigFileError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc.path))}:")
        for problem in exc.problems:
            err_console.print(f"  {escape(problem)}")
        sys.exit(2)
    except (DeviceError, UserError, SessionFileError, CheckpointError, OutputFileError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
