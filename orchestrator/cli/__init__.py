"""The ``shearlab`` command line: one app, one error handler (``errors``), one way to report (``output``:
a table, or ``--json`` with the same keys)."""

from shearlab.orchestrator.cli.app import app, main

__all__ = ["app", "main"]
