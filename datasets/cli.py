"""``shearlab dataset ...`` commands: ``info``, ``check``, ``export-uff``.

Output goes through rich; a problem ends with a non-zero exit status and a message naming the file,
the sequence and the cause — never a traceback for bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shearlab.datasets.errors import SessionFileError
from shearlab.datasets.integrity import check_session, session_files
from shearlab.datasets.reader import SessionReader
from shearlab.datasets.uff import export_uff
from shearlab.protocols.output_files import OutputFileError

app = typer.Typer(help="Inspect, verify and export session files.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _fail(message: str) -> None:
    _err.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(code=1)


def _info_one(path: Path) -> bool:
    try:
        reader = SessionReader(path)
    except SessionFileError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return False
    with reader:
        info = reader.info
        rows = reader.sequences(include_incomplete=True)
        complete = [r for r in rows if r.complete]
        table = Table(title=str(path), show_header=False)
        table.add_row("session", f"{info.session_id} ({info.kind})")
        table.add_row("phantom / batch", f"{info.phantom} / {info.batch_id}")
        table.add_row("concentration", "-" if info.concentration_pct is None else f"{info.concentration_pct:g} %")
        table.add_row("rig", info.rig_name)
        table.add_row("schema / software", f"{reader.schema_version} / shearlab {reader.software_version}")
        table.add_row("created", reader.created_at)
        frames, depth, lateral = reader.grid.shape
        table.add_row("grid (frames x depth x lateral)", f"{frames} x {depth} x {lateral}")
        table.add_row("sequences complete", str(len(complete)))
        table.add_row("  of which failed", str(sum(r.failed for r in complete)))
        table.add_row("  labelled", str(sum(r.label_e_kpa is not None for r in complete)))
        table.add_row("half-written (redone on resume)", str(len(rows) - len(complete)))
        pushes = sorted({r.push_index for r in complete})
        table.add_row("pushes", ", ".join(map(str, pushes)) or "-")
        table.add_row("positions", str(len({r.position_index for r in complete})))
        table.add_row("indentation runs", str(len(reader.indentation_runs(verify=False))))
        fits = reader.calibration_fits()
        table.add_row("calibration fits", ", ".join(f"{f.calibration_id}: {f.e_kpa:.2f} kPa" for f in fits) or "-")
        table.add_row("size on disk", f"{path.stat().st_size / 2**20:.1f} MiB")
        _out.print(table)
    return True


@app.command()
def info(path: Path = typer.Argument(..., help="A session file or a folder of them.")) -> None:
    """Summarise a session file (or every session file in a folder)."""
    files = session_files(path)
    if not files:
        _fail(f"{path}: no session files (*.h5) found")
    ok = True
    for file in files:
        try:
            ok = _info_one(file) and ok
        except SessionFileError as exc:
            _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            ok = False
    if not ok:
        raise typer.Exit(code=1)


@app.command()
def check(path: Path = typer.Argument(..., help="A session file or a folder of them.")) -> None:
    """Verify structure, completion markers and checksums; exit 1 if anything is wrong."""
    files = session_files(path)
    if not files:
        _fail(f"{path}: no session files (*.h5) found")
    bad = 0
    for file in files:
        report = check_session(file)
        if report.ok:
            extra = f", {report.n_incomplete} half-written" if report.n_incomplete else ""
            _out.print(f"[green]ok[/]  {escape(str(file))}: {report.n_complete} sequences ({report.n_failed} failed{extra}), "
                       f"{report.n_indentation_runs} indentation runs, {report.n_calibration_fits} fits",
                       soft_wrap=True)
            continue
        bad += 1
        for problem in report.problems:
            where = f": sequence {problem.where}" if problem.where else ""
            _err.print(f"[bold red]FAIL[/] {escape(f'{file}{where}: {problem.cause}')}", soft_wrap=True)
    if bad:
        _fail(f"{bad} of {len(files)} files have problems")


@app.command("export-uff")
def export_uff_command(
    session: Path = typer.Argument(..., help="Session file to export."),
    out: Path = typer.Argument(..., help="UFF file to write (never the session itself)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists (once the export is complete)."),
) -> None:
    """Export every complete sequence's displacement to USTB's UFF (uff.beamformed_data, metres)."""
    try:
        keys = export_uff(session, out, force=force)
    except (SessionFileError, OutputFileError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    except OSError as exc:
        _fail(f"{out}: cannot write ({exc.strerror or exc})")
    _out.print(f"wrote {len(keys)} sequences to {escape(str(out))}")
