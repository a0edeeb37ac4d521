"""Making the rig safe after a failure without hiding the failure.

A probe must be lifted however a step ends; but when the step failed because the link to the twin or the
lab died, lifting fails too, and an exception raised in a ``finally`` replaces the first one: the run would
end blaming the robot for what the scanner did first. ``then_always`` runs the safety action after the
block either way; when the block failed, a failure of the action is logged and noted on the first error,
which is the one that propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def then_always(action: Callable[[], None], *, what: str) -> Iterator[None]:
    """Run the block, then ``action`` (``what`` says what it does, for the note), whatever the block did."""
    try:
        yield
    except BaseException as first:
        try:
            action()
        except Exception as later:
            first.add_note(f"then, while {what}: {type(later).__name__}: {later}")
            logger.warning("after %s, %s failed too: %s", first, what, later)
        raise
    action()
