"""``python -m shearlab.devices.twin``: the twin's command line (``cli.py``)."""

from shearlab.devices.twin.cli import app

app()
