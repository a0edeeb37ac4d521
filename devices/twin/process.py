"""Start a twin in its own process and read its endpoints line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 60.0


class TwinStartError(RuntimeError):
    """The twin process exited or stayed silent instead of printing its endpoints."""


@dataclass
class TwinProcess:
    """A running ``shearlab twin serve`` child; ``endpoints`` is its parsed JSON line."""

    process: subprocess.Popen[str]
    endpoints: dict[str, Any]

    @property
    def host(self) -> str:
        return self.endpoints["ur"]["host"]

    @property
    def speed(self) -> float:
        return float(self.endpoints["speed"])

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
    """Launch ``python -m shearlab.devices.twin.serve`` and wait for its endpoints."""
    cmd = [sys.executable, "-m", "shearlab.devices.twin.serve", "--host", host, "--speed", str(speed)]
    if world is not None:
        cmd += ["--world", str(world)]
    if exit_with_parent:
        cmd += ["--parent-pid", str(os.getpid())]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not line or not line[0].strip():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise TwinStartError(f"twin on {host} did not start (exit code {proc.returncode}):\n{tail}")
    # Drain stderr so a chatty twin never blocks on a full pipe.
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return TwinProcess(process=proc, endpoints=json.loads(line[0]))
