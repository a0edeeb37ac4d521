"""``shearlab twin realism``: runs the flows on the twin, so it lives up here, beside the twin's own commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shearlab.orchestrator.cli.output import emit, rows_table, say
from shearlab.orchestrator.cli.rig_commands import JsonFlag
from shearlab.orchestrator.cli.runtime import flow_progress

app = typer.Typer(rich_markup_mode=None)


@app.command("realism")
def twin_realism(
    world: Annotated[Path | None, typer.Option(help="World file (TOML); default: the shipped world.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the sessions and realism.md / realism.json; default: $SHEARLAB_OUT/realism (out/realism).")] = None,
    sessions: Annotated[Path | None, typer.Option(help="Measure these session files instead of acquiring new ones.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="Calibration records of --sessions (for the cylinder spread).")] = None,
    positions: Annotated[int, typer.Option(help="Probe positions per block when acquiring.", min=2)] = 3,
    json_output: JsonFlag = False,
) -> None:
    """Measure how hard the twin's lab is: acquire a small campaign on every block (or read given
    sessions) and report each effect's magnitude next to its source, and the two shortcut checks."""
    from shearlab.orchestrator import realism
    from shearlab.orchestrator.settings import settings

    folder = out or settings().out / "realism"
    if sessions is None:
        with flow_progress("realism"):
            sessions, calibration = realism.acquire_sessions(folder, world=world, positions=positions)
    report = realism.measure(sessions, calibration, world=world)
    markdown, _ = realism.write(report, folder)
    rows = [{"check": f"label from {check.feature}", "measured": f"{check.ratio:.2f} x mean predictor ({check.mae_kpa:.1f} kPa)",
             "limit": f">= {realism.MIN_SHORTCUT_RATIO}", "verdict": "ok" if check.passed else "too predictive"}
            for check in report.shortcuts]
    median = report.position_correlation["median"]
    rows.append({"check": "same push at two positions", "measured": f"median correlation {median:.3f}",
                 "limit": f"<= {realism.MAX_POSITION_CORRELATION}",
                 "verdict": "ok" if median <= realism.MAX_POSITION_CORRELATION else "too alike"})
    emit(report.to_json(), rows_table(f"twin realism ({sessions})", rows), as_json=json_output)
    if not json_output:
        say(f"report: {markdown}")
