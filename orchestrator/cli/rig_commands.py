"""``shearlab rig check`` and ``shearlab init``: look at a rig before anything moves; copy the shipped rig
files and plans into a folder a lab edits."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shearlab.orchestrator.cli.errors import ExitCode, UserError
from shearlab.orchestrator.cli.output import emit, rows_table, say, warn

if TYPE_CHECKING:
    from shearlab.devices.endpoints import Endpoints

app = typer.Typer(help="Rig files and device checks.", no_args_is_help=True, rich_markup_mode=None)
top_level = typer.Typer(rich_markup_mode=None)

RigFile = Annotated[Path | None, typer.Argument(
    help="Rig file (TOML); default: $SHEARLAB_RIG, else the shipped twin rig.", metavar="[RIGFILE]", show_default=False)]
EndpointsFile = Annotated[Path | None, typer.Option(
    help="Use the running twin whose endpoints JSON is in this file (shearlab twin serve --endpoints FILE).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the report as JSON (the table's keys).")]


@app.command("check")
def rig_check(rigfile: RigFile = None, endpoints: EndpointsFile = None, json_output: JsonFlag = False) -> None:
    """Connect to every device of RIGFILE: identity, state, latency, and the force each force sensor reads
    after a bias and the robot's TCP force. Exit 4 if a device is down."""
    from shearlab.devices.connect import rig_backend
    from shearlab.devices.rig_check import check_rig
    from shearlab.orchestrator.settings import settings
    from shearlab.protocols.rig import load_rig

    path = rigfile or settings().rig
    rig = load_rig(path)
    with rig_backend(rig, read_endpoints(endpoints)) as backend:
        checks = check_rig(rig, backend)
    rows = [{"device": c.device, "identity": c.identity or None, "state": c.state or None, "latency_ms": c.latency_ms,
             "force_n": c.force_n, "note": c.error or c.warning} for c in checks]
    emit({"rig": rig.name, "file": str(path), "devices": rows}, rows_table(f"rig {rig.name} ({path})", rows),
         as_json=json_output)
    for c in checks:
        if c.warning:
            warn(f"{c.device} {c.warning}")
    down = [c.device for c in checks if c.error]
    if down:
        raise UserError(f"rig {rig.name} ({path}): {', '.join(down)} not ready", ExitCode.DEVICE)


@top_level.command("init")
def init(folder: Annotated[Path, typer.Argument(help="Folder to create rigs/ and plans/ in.", metavar="[FOLDER]")] = Path("."),
         force: Annotated[bool, typer.Option(help="Overwrite files that are already there.")] = False) -> None:
    """Copy the shipped rig files and plans into FOLDER/rigs and FOLDER/plans, to edit for a lab."""
    from shearlab.protocols.shipped import shipped_folder

    pairs = [(source, folder / kind / source.name) for kind in ("rigs", "plans")
             for source in sorted(shipped_folder(kind).glob("*.toml"))]
    there = [str(target) for _, target in pairs if target.exists()]
    if there and not force:
        raise UserError(f"{', '.join(there)}: already there (--force overwrites)", ExitCode.CONFIG)
    for source, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        say(f"wrote {target}")


def read_endpoints(path: Path | None) -> Endpoints | None:
    """The endpoints JSON that ``shearlab twin serve --endpoints FILE`` wrote, or ``None``."""
    from shearlab.devices.endpoints import Endpoints

    if path is None:
        return None
    try:
        return Endpoints.model_validate_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read twin endpoints ({str(exc).splitlines()[0]})", ExitCode.CONFIG) from None
