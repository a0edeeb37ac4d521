"""The ``shearlab`` app: global options, the command groups, and ``main`` with the one error handler."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shearlab import __version__
from shearlab.devices.twin.cli import app as twin_commands
from shearlab.orchestrator.cli import data_commands, flow_commands, live_command, model_commands, rig_commands, twin_realism
from shearlab.orchestrator.cli.errors import classify
from shearlab.orchestrator.cli.output import err
from shearlab.orchestrator.cli.runtime import configure_prefect

# Plain help text: rich markup would eat bracketed words such as "[twin]" in help and docstrings.
app = typer.Typer(help="Robotic ultrasound shear-wave elasticity experiments, end to end.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
_debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shearlab {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", envvar="SHEARLAB_DEBUG",
                                        help="Show Prefect's logs and full tracebacks on the terminal.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Robotic ultrasound shear-wave elasticity experiments, end to end."""
    global _debug
    _debug = debug
    configure_prefect(debug=debug)


app.registered_commands.extend(flow_commands.app.registered_commands)
app.registered_commands.extend(rig_commands.top_level.registered_commands)
app.registered_commands.extend(live_command.app.registered_commands)
app.add_typer(rig_commands.app, name="rig")
app.add_typer(data_commands.app, name="dataset")
# ``shearlab twin``: the twin's own commands (``python -m shearlab.devices.twin``), and the realism report,
# which runs the flows on the twin and so belongs up here.
twin_app = typer.Typer(help=twin_commands.info.help, no_args_is_help=True, rich_markup_mode=None)
twin_app.registered_commands.extend(twin_commands.registered_commands)
twin_app.registered_commands.extend(twin_realism.app.registered_commands)
app.add_typer(twin_app, name="twin")
# ``shearlab train``, ``evaluate`` and ``predict``: torch is imported when one of them runs.
app.registered_commands.extend(model_commands.app.registered_commands)


def main(args: list[str] | None = None) -> None:
    """Run the app on ``args`` (default: the command line); whatever ends a command ends here, as one line on
    stderr and an exit code (errors.py). Always exits (``SystemExit``).

    Usage errors (2), ``typer.Exit`` and Ctrl-C (130) are typer's and click's own, in standalone mode.
    """
    try:
        app(args=args)
    except Exception as exc:
        if _debug:
            raise
        code, message = classify(exc)
        err.print("error: ", style="bold red", end="")
        err.print(message, markup=False, soft_wrap=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
