"""How flow and task runs read in the Prefect UI: names that say what they do, tags to filter by.

A flow labels itself (whoever started it: the command line, a script, a deployment or the UI), so
every run of a flow carries the same kind of name and the same tags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from pydantic import BaseModel

from shearlab.protocols.config_files import ConfigFileError
from shearlab.protocols.rig import Rig

M = TypeVar("M", bound=BaseModel)


def started_name(what: str) -> str:
    """``"<what> 2026-11-28 10:00"``: what the run does and when it started (local time, as the lab reads it)."""
    return f"{what} {datetime.now():%Y-%m-%d %H:%M}"


def parameter_name(parameter: str, load: Callable[[Path], BaseModel]) -> str:
    """The ``name`` of the running flow's plan or rig parameter: a model, or a file to load it from.

    A file that does not load is named by its stem here; the flow itself then fails with the reason.
    """
    value = flow_run.parameters.get(parameter)
    if isinstance(value, BaseModel):
        return str(getattr(value, "name", parameter))
    try:
        return str(getattr(load(Path(str(value))), "name", parameter))
    except ConfigFileError:
        return Path(str(value)).stem


def as_model(value: M | Path | str, load: Callable[[Path], M]) -> M:
    """A flow parameter given as a model or as the path of its file."""
    return load(Path(value)) if isinstance(value, Path | str) else value


def run_tags(rig: Rig, plan_name: str, batch_ids: Iterable[str] = ()) -> list[str]:
    """Tags to filter runs by in the UI: ``rig:<name>``, ``plan:<name>``, ``batch:<id>`` for each batch."""
    return [f"rig:{rig.name}", f"plan:{plan_name}", *(f"batch:{b}" for b in dict.fromkeys(batch_ids))]


def tag_flow_run(tags: list[str]) -> None:
    """Add ``tags`` to the running flow run (its task runs take them from ``prefect.tags``)."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        client.update_flow_run(flow_run.id, tags=sorted(set(run.tags) | set(tags)))
