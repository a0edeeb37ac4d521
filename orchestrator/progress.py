"""Progress of a flow, told twice: a Prefect progress artifact for the UI, and the listeners in this
process (the command line's progress bars).

A listener is a plain callable: the flow runs in the caller's process, so the command line watches it
without a round trip through the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

# (what was just done, steps done, steps in all)
Listener = Callable[[str, int, int], None]
_listeners: list[Listener] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` on every step of every flow that runs in this process meanwhile."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


class Progress:
    """``total`` steps of one flow run; create it inside the flow."""

    def __init__(self, description: str, total: int) -> None:
        self.total = total
        self.done = 0
        artifact = create_progress_artifact(progress=0.0, description=description)
        assert isinstance(artifact, UUID), "a synchronous flow gets the artifact's id, not a coroutine"
        self._artifact = artifact
        self._tell(description)

    def advance(self, what: str) -> None:
        """One more step done; ``what`` names it (``"B1-10.0 position 3"``)."""
        self.done += 1
        update_progress_artifact(self._artifact, progress=100.0 * self.done / max(self.total, 1))
        self._tell(what)

    def _tell(self, what: str) -> None:
        for listener in list(_listeners):
            listener(what, self.done, self.total)
