"""The twin's control endpoint, server side: operator steps, the world's state and fault injection.

The wire (JSON lines) and its client are in ``shearlab.devices.twin_client.control``. Operations are
registered by the twin process (``serve.py``) as plain functions taking keyword arguments. The server
keeps the twin's bounds (``guard``); a twin serving a network has a token, and every request but ``ping``
must carry it: these operations place phantoms and inject faults.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shearlab.devices.twin.guard import PARTIAL_MESSAGE_S, ConnectionSlots, CpuBudget, LineReader, Offender, token_matches
from shearlab.devices.twin_client.control import ControlRequest

Operation = Callable[..., Any]
# The longest request, a cylinder to place, is a few hundred bytes.
CONTROL_LINE_BYTES = 64 * 1024


class ControlServer:
    """Serves registered operations on ``host:port`` (port 0 picks a free one); ``token``: required of
    every request but ``ping`` when set."""

    def __init__(self, host: str, port: int, operations: dict[str, Operation], *, token: str | None = None) -> None:
        self.operations = operations
        ops = operations
        slots = ConnectionSlots()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                reader, budget = LineReader(conn, CONTROL_LINE_BYTES), CpuBudget()
                try:
                    while (line := reader.next_line()) is not None:
                        with budget.metered():
                            reply = _dispatch(ops, line, token)
                        conn.settimeout(PARTIAL_MESSAGE_S)  # a client that stops reading is dropped
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                except (Offender, OSError):
                    return  # a client that breaks a bound or vanishes loses its connection

            def finish(self) -> None:
                slots.give_back()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                return slots.take()

        self._server = Server((host, port), Handler)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="twin-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _dispatch(operations: dict[str, Operation], line: bytes, token: str | None) -> dict[str, Any]:
    try:
        request = ControlRequest.model_validate_json(line)
    except ValidationError as exc:
        return {"ok": False, "error": f"bad control request: {exc.errors()[0]['msg']}"}
    arguments = dict(request.model_extra or {})
    given = arguments.pop("token", None)
    if request.op != "ping" and not token_matches(token, given):
        return {"ok": False, "error": "this twin serves a network: a control request needs the twin's token"}
    op = operations.get(request.op)
    if op is None:
        return {"ok": False, "error": f"unknown operation {request.op!r}; known: {sorted(operations)}"}
    try:
        return {"ok": True, "result": op(**arguments)}
    except (TypeError, ValueError, KeyError) as exc:
        return {"ok": False, "error": f"{request.op}: {exc}"}
