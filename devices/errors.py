"""Typed device errors: every error names the device and says what went wrong.

``transient`` tells the orchestration layer whether retrying the same step can help (a dropped
stream, a garbled record) or whether an operator must act (protective stop, unreachable device).
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base class; ``device`` is the rig's name for the device (``robot``, ``probe_ft``...)."""

    transient: bool = False

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class DeviceConnectionError(DeviceError):
    """The device cannot be reached, or the link was lost."""


class DeviceTimeoutError(DeviceError):
    """The device did not answer, or did not reach a state, in time."""

    transient = True


class DeviceProtocolError(DeviceError):
    """The device answered something that does not parse: garbled or dropped data."""

    transient = True


class DeviceFaultError(DeviceError):
    """The device reports a fault that needs an operator (protective stop, limit, stall)."""


class DeviceBusyError(DeviceError):
    """Another run holds the device and did not let go in time."""


class SafetyLimitError(DeviceError):
    """A command was refused before any I/O because it would break a configured safety limit."""


class DeviceRefusedError(DeviceFaultError):
    """The device understood a request and refused it (a scanner's duty-cycle limit, no acoustic contact).

    ``retry_after_s`` (virtual seconds) is set when the same request will pass after that wait; the error is
    then transient. Without it someone must act first.
    """

    def __init__(self, device: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(device, message)
        self.retry_after_s = retry_after_s
        self.transient = retry_after_s is not None
