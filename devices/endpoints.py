"""Where a running twin serves each device of a rig: the one JSON line ``twin serve`` prints.

Field names are the rig's device names (``robot``, ``hexapod``...), so a rig file's tables and a
twin's endpoints line up one to one. A rig file's own addresses take precedence; the twin fills in
what the file leaves out.
"""

from __future__ import annotations

from pydantic import Field

from shearlab.protocols.strict_model import StrictModel


class HostAddress(StrictModel):
    """A controller reached on fixed ports of one host (the UR's 30004, 29999, 30003)."""

    host: str


class TcpAddress(StrictModel):
    host: str
    port: int = Field(ge=1, le=65535)


class HexapodAddress(TcpAddress):
    """The C-887 answers on TCP and, as a pseudo-terminal here, on its serial port."""

    serial: str


class SerialAddress(StrictModel):
    serial: str


class Endpoints(StrictModel):
    """Every device of a twin, its control endpoint, and the speed of its virtual clock."""

    robot: HostAddress
    hexapod: HexapodAddress
    probe_ft: SerialAddress
    indenter_ft: SerialAddress
    scanner: TcpAddress
    control: TcpAddress
    speed: float = Field(gt=0)
    # Set when the twin serves a network (``--allow-remote``): its control endpoint and its dashboard's
    # unlock take only requests that carry it.
    token: str | None = None
