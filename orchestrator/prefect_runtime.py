"""Running Prefect from a short-lived command line without a wall of shutdown noise.

With the local ephemeral API, a process that exits right after a flow gets ERROR lines and
CancelledError tracebacks from the ephemeral server's event recorder as it is torn down (SPEC §6).
They say nothing about the run, which has finished and been recorded; a user reading them would
think it failed. We silence those loggers for the teardown only; a persistent server
(``PREFECT_API_URL``) has no such teardown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

_TEARDOWN_LOGGERS = ("prefect.server", "prefect.server.events", "uvicorn", "uvicorn.error", "prefect._internal", "asyncio",
                     "prefect.events")


@contextmanager
def quiet_prefect() -> Iterator[None]:
    """Run the block; afterwards mute the loggers that only speak during ephemeral-server teardown."""
    yield
    for name in _TEARDOWN_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False


class _BelowError(logging.Filter):
    """Errors off, and tracebacks off the warnings (a reconnecting websocket's, say). The root's console
    handler is the last a record meets, so the run's log in the API has had it whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return record.levelno < logging.ERROR


def errors_to_the_log_only() -> None:
    """Keep errors (and their tracebacks) off Prefect's console handlers; the run's log in the API keeps them.

    A command line reports the error that ended a flow in one line of its own; Prefect would print the
    same error again with its traceback, and the ephemeral server's teardown errors besides. Warnings
    (an operator check, a retry) still reach the terminal. Call after Prefect has set up its logging.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.root, *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(isinstance(f, _BelowError) for f in handler.filters):
                handler.addFilter(_BelowError())
