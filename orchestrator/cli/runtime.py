"""What a command line needs around Prefect and long steps: logs and tracebacks to the run's log (the
Prefect API and UI), not the terminal, unless ``--debug``; progress bars for every step a user waits on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shearlab.orchestrator.cli.output import err

_debug = False


def configure_prefect(*, debug: bool) -> None:
    """Set before Prefect is imported: it reads its logging settings once, on import."""
    global _debug
    _debug = debug
    # The local ephemeral server would phone home for usage telemetry; a lab machine (and CI) has no
    # route out, and the failure shows up as an ERROR line in the middle of a run.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not debug:
        # Loggers keep their levels, so runs log in full to the API (the UI, ``prefect flow-run logs``); the
        # terminal shows warnings (an operator check, a retry) beside the progress bar, not every step.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def progress_bar() -> Progress:
    """A bar on stderr (stdout stays the report, e.g. JSON), cleared when done."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True)


def quiet_console() -> None:
    """Unless ``--debug``: errors and tracebacks to the run's log in the API, not the terminal."""
    from shearlab.orchestrator.prefect_runtime import errors_to_the_log_only

    if not _debug:
        errors_to_the_log_only()


@contextmanager
def flow_progress(description: str) -> Iterator[Progress]:
    """A bar that follows every flow run in this process (``orchestrator.progress``): its steps and what each was."""
    from shearlab.orchestrator.prefect_runtime import quiet_prefect
    from shearlab.orchestrator.progress import listening

    quiet_console()
    with progress_bar() as progress, quiet_prefect():
        bar = progress.add_task(description, total=None)

        def step(what: str, done: int, total: int) -> None:
            progress.update(bar, description=f"{description}: {what}", completed=done, total=total)

        with listening(step):
            yield progress


@contextmanager
def steps(description: str, total: int | None) -> Iterator[Progress]:
    """A bar for a loop of this process (epochs, tiles); advance it with ``progress.advance(progress.task_ids[0])``."""
    with progress_bar() as progress:
        progress.add_task(description, total=total)
        yield progress
