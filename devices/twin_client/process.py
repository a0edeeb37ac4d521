"""Start a twin in its own process (``python -m shearlab.devices.twin serve``) and read its endpoints.

The twin runs in a process of its own because the ``ur_rtde`` constructors hold the GIL: a twin inside
the client's process deadlocks. Its first line of output is its ``Endpoints`` as JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from shearlab.devices.endpoints import Endpoints

STARTUP_TIMEOUT_S = 60.0
# The twin's one entry point; ``shearlab twin`` mounts the same commands.
TWIN_COMMAND = ("-m", "shearlab.devices.twin", "serve")


class TwinStartError(RuntimeError):
    """The twin process exited or stayed silent instead of printing its endpoints."""


@dataclass
class TwinProcess:
    """A running twin child process and the endpoints it printed."""

    process: subprocess.Popen[str]
    endpoints: Endpoints

    @property
    def host(self) -> str:
        return self.endpoints.robot.host

    @property
    def speed(self) -> float:
        return self.endpoints.speed

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> TwinProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_twin(
    host: str,
    *,
    speed: float = 1.0,
    world: Path | None = None,
    exit_with_parent: bool = True,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> TwinProcess:
    """Launch a twin serving every device on ``host`` and wait for its endpoints line."""
    cmd = [sys.executable, *TWIN_COMMAND, "--host", host, "--speed", str(speed)]
    if world is not None:
        cmd += ["--world", str(world)]
    if exit_with_parent:
        cmd += ["--parent-pid", str(os.getpid())]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not line or not line[0].strip():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise TwinStartError(f"twin on {host} did not start (exit code {proc.returncode}):\n{tail}")
    # Drain stderr so a chatty twin never blocks on a full pipe.
    threading.Thread(target=stderr.read, daemon=True).start()
    try:
        endpoints = Endpoints.model_validate_json(line[0])
    except ValidationError as exc:
        proc.kill()
        raise TwinStartError(f"twin on {host} printed no endpoints: {line[0][:200]!r} ({exc.errors()[0]['msg']})") from exc
    return TwinProcess(process=proc, endpoints=endpoints)
