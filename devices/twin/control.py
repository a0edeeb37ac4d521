"""The twin's control endpoint, server side: operator steps, the world's state and fault injection.

The wire (JSON lines) and its client are in ``shearlab.devices.twin_client.control``. Operations are
registered by the twin process (``serve.py``) as plain functions taking keyword arguments.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shearlab.devices.twin_client.control import ControlRequest

Operation = Callable[..., Any]


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
