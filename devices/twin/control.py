"""The twin's control endpoint: operator steps and fault injection, for tests and for flows that
run against the twin.

Wire: TCP, one JSON object per line each way. A request is ``{"op": NAME, ...arguments}``; the reply
is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": MESSAGE}``. Operations are registered
by the twin process (``serve.py``) as plain functions taking keyword arguments.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

Operation = Callable[..., Any]


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    op: str


class ControlError(RuntimeError):
    """The twin refused or failed a control request."""


class ControlServer:
    """Serves registered operations on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, host: str, port: int, operations: dict[str, Operation]) -> None:
        self.operations = operations
        ops = operations

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    reply = _dispatch(ops, line)
                    self.wfile.write(json.dumps(reply).encode() + b"\n")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((host, port), Handler)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="twin-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _dispatch(operations: dict[str, Operation], line: bytes) -> dict[str, Any]:
    try:
        request = ControlRequest.model_validate_json(line)
    except ValidationError as exc:
        return {"ok": False, "error": f"bad control request: {exc.errors()[0]['msg']}"}
    op = operations.get(request.op)
    if op is None:
        return {"ok": False, "error": f"unknown operation {request.op!r}; known: {sorted(operations)}"}
    try:
        return {"ok": True, "result": op(**(request.model_extra or {}))}
    except (TypeError, ValueError, KeyError) as exc:
        return {"ok": False, "error": f"{request.op}: {exc}"}


class TwinControl:
    """Client of the control endpoint."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0) -> None:
        self.address = (host, port)
        self._sock = socket.create_connection(self.address, timeout=timeout_s)
        self._file = self._sock.makefile("rwb")

    def call(self, op: str, **arguments: Any) -> Any:
        self._file.write(json.dumps({"op": op, **arguments}).encode() + b"\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            raise ControlError(f"twin control at {self.address[0]}:{self.address[1]} closed the connection")
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
