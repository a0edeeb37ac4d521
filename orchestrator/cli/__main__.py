"""``python -m shearlab.orchestrator.cli``: the same as the ``shearlab`` command."""

from shearlab.orchestrator.cli.app import main

main()
