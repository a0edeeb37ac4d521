"""The client side of a digital twin: start its process, read its endpoints, use its control endpoint.

Production code knows a twin only through these: a command line that prints ``Endpoints`` as JSON, the
device wire protocols its drivers speak anyway, and the control endpoint's JSON lines. It never imports
``shearlab.devices.twin``.
"""

from shearlab.devices.twin_client.control import ControlError, ControlRequest, TwinControl
from shearlab.devices.twin_client.process import TwinProcess, TwinStartError, start_twin

__all__ = ["ControlError", "ControlRequest", "TwinControl", "TwinProcess", "TwinStartError", "start_twin"]
