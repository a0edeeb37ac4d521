"""``shearlab dataset info|check|export-uff``: inspect, verify and export session files (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shearlab.orchestrator.cli.errors import ExitCode, UserError
from shearlab.orchestrator.cli.output import emit, record_table, rows_table, say
from shearlab.orchestrator.cli.rig_commands import JsonFlag

app = typer.Typer(help="Inspect, verify and export session files.", no_args_is_help=True, rich_markup_mode=None)

SessionPath = Annotated[Path, typer.Argument(help="A session file or a folder of them.", metavar="PATH", show_default=False)]


def _files(path: Path) -> list[Path]:
    from shearlab.datasets.integrity import session_files

    files = session_files(path)
    if not files or not files[0].exists():
        raise UserError(f"{path}: {'no session files (*.h5) found' if path.is_dir() else 'file not found'}", ExitCode.DATA)
    return files


def _info(path: Path) -> dict[str, Any]:
    from shearlab.datasets.reader import SessionReader

    with SessionReader(path) as reader:
        info = reader.info
        rows = reader.sequences(include_incomplete=True)
        complete = [r for r in rows if r.complete]
        frames, depth, lateral = reader.grid.shape
        return {
            "path": str(path), "session_id": info.session_id, "kind": info.kind, "phantom": info.phantom,
            "batch_id": info.batch_id, "concentration_pct": info.concentration_pct, "rig": info.rig_name,
            "schema_version": reader.schema_version, "checksum": reader.checksum, "software_version": reader.software_version,
            "created": reader.created_at,
            "grid_frames_depth_lateral": [frames, depth, lateral],
            "sequences_complete": len(complete), "sequences_failed": sum(r.failed for r in complete),
            "sequences_labelled": sum(r.label_e_kpa is not None for r in complete),
            "half_written": len(rows) - len(complete),
            "pushes": sorted({r.push_index for r in complete}),
            "positions": len({r.position_index for r in complete}),
            "indentation_runs": len(reader.indentation_runs(verify=False)),
            "calibration_fits": {f.calibration_id: round(f.e_kpa, 2) for f in reader.calibration_fits()},
            "size_mib": round(path.stat().st_size / 2**20, 2),
        }


@app.command()
def info(path: SessionPath, json_output: JsonFlag = False) -> None:
    """Summarise a session file (or every session file in a folder); exit 5 if one cannot be read."""
    from shearlab.datasets.errors import SessionFileError

    records: list[dict[str, Any]] = []
    for file in _files(path):
        try:
            records.append(_info(file))
        except SessionFileError as exc:
            records.append({"path": str(file), "error": str(exc)})
    emit(records, [record_table(r["path"], r) for r in records], as_json=json_output)
    bad = [r["error"] for r in records if "error" in r]
    if bad:
        raise UserError(bad[0] if len(bad) == 1 else f"{len(bad)} of {len(records)} files cannot be read", ExitCode.DATA)


@app.command()
def check(path: SessionPath, json_output: JsonFlag = False) -> None:
    """Verify structure, completion markers and checksums; exit 5 if anything is wrong."""
    from shearlab.datasets.integrity import check_session

    reports = [check_session(file) for file in _files(path)]
    rows = [{"path": str(r.path), "ok": r.ok, "sequences": r.n_complete, "failed": r.n_failed, "half_written": r.n_incomplete,
             "indentation_runs": r.n_indentation_runs, "calibration_fits": r.n_calibration_fits,
             "problems": [f"sequence {p.where}: {p.cause}" if p.where else p.cause for p in r.problems]} for r in reports]
    # The title names the file or folder checked; each row its file within it, so the path is not said twice.
    shown = [{**row, "path": str(r.path.relative_to(path)) if path.is_dir() else r.path.name} for row, r in zip(rows, reports, strict=True)]
    emit(rows, rows_table(str(path), shown), as_json=json_output)
    bad = [r for r in reports if not r.ok]
    if len(bad) == 1 and len(bad[0].problems) == 1:
        problem = bad[0].problems[0]
        raise UserError(f"{bad[0].path}: {f'sequence {problem.where}: ' if problem.where else ''}{problem.cause}", ExitCode.DATA)
    if bad:
        raise UserError(f"{len(bad)} of {len(reports)} files have problems", ExitCode.DATA)


@app.command("export-uff")
def export_uff_command(
    session: Annotated[Path, typer.Argument(help="Session file to export.", metavar="SESSION", show_default=False)],
    out: Annotated[Path, typer.Argument(help="UFF file to write (never the session itself).", metavar="OUT", show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists (once the export is complete).")] = False,
) -> None:
    """Export every complete sequence's displacement to USTB's UFF (uff.beamformed_data, metres)."""
    from shearlab.datasets.uff import export_uff

    keys = export_uff(session, out, force=force)
    say(f"wrote {len(keys)} sequences to {out}")
