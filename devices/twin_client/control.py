"""Client of a twin's control endpoint: the twin as ``StandIn`` (operator steps, world state, faults).

Wire: TCP, one JSON object per line each way. A request is ``{"op": NAME, ...arguments}``; the reply
is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": MESSAGE}``. Operations: ``ping``,
``place_cylinder`` (``cylinder``), ``remove_cylinder``, ``state``, ``fault`` (a ``Fault``'s fields). A twin
that serves a network requires its token as a ``token`` field of every request but ``ping``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from pydantic import BaseModel, ConfigDict

from shearlab.devices.endpoints import TcpAddress
from shearlab.devices.stand_in import Fault, WorldState
from shearlab.protocols.phantoms import Cylinder


class ControlRequest(BaseModel):
    """One request line: the operation and its arguments (extra fields)."""

    model_config = ConfigDict(extra="allow")

    op: str


class ControlError(RuntimeError):
    """The twin refused or failed a control request."""


class TwinControl:
    """A connection to a twin's control endpoint; a ``StandIn``."""

    name = "twin"

    def __init__(self, address: TcpAddress, *, timeout_s: float = 10.0, token: str | None = None) -> None:
        self.address = address
        self._token = token
        self._sock = socket.create_connection((address.host, address.port), timeout=timeout_s)
        self._file = self._sock.makefile("rwb")

    def ping(self) -> None:
        self.call("ping")

    def place_cylinder(self, cylinder: Cylinder) -> None:
        self.call("place_cylinder", cylinder=cylinder.model_dump(mode="json"))

    def remove_cylinder(self) -> None:
        self.call("remove_cylinder")

    def state(self) -> WorldState:
        return WorldState.model_validate(self.call("state"))

    def inject_fault(self, fault: Fault) -> None:
        self.call("fault", **fault.model_dump(mode="json"))

    def call(self, op: str, **arguments: Any) -> Any:
        """One raw operation; the typed methods above are the ``StandIn`` a full twin serves."""
        request = {"op": op, **arguments} if self._token is None else {"op": op, "token": self._token, **arguments}
        self._file.write(json.dumps(request).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ControlError(f"twin control at {self.address.host}:{self.address.port} closed the connection")
        reply = json.loads(line)
        if not reply["ok"]:
            raise ControlError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> TwinControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
