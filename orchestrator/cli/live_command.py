"""``shearlab live SESSION_DIR``: the live page of a campaign's session folder (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shearlab.orchestrator.cli.errors import ExitCode, UserError
from shearlab.orchestrator.cli.output import say
from shearlab.orchestrator.live_page import DEFAULT_HOST, DEFAULT_PORT

app = typer.Typer(rich_markup_mode=None)


@app.command()
def live(
    session_dir: Annotated[Path, typer.Argument(help="The campaign's session folder (its out_dir).", metavar="SESSION_DIR",
                                                show_default=False)],
    host: Annotated[str, typer.Option(help="Address to serve on; another than loopback shows the page to the network.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = DEFAULT_PORT,
) -> None:
    """A local page that follows the session files as the campaign writes them: each position's map (modulus
    and sigma) once the campaign has mapped it, every push's QC and contact force. Runs until Ctrl-C."""
    from shearlab.orchestrator.live_page import serve

    if not session_dir.is_dir():
        raise UserError(f"{session_dir}: no such folder", ExitCode.DATA)
    say(f"live page of {session_dir.resolve()}: http://{host}:{port}/ (Ctrl-C to stop)")
    serve(session_dir, host=host, port=port)
