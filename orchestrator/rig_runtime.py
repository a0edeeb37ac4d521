"""Bring a rig file to life: start its twin when it has one, hand out the endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shearlab.devices.twin.process import start_twin
from shearlab.protocols.rig import Rig


@contextmanager
def rig_endpoints(rig: Rig, endpoints: dict[str, Any] | None = None, *,
                  world: Path | None = None) -> Iterator[dict[str, Any] | None]:
    """Endpoints of the rig's twin (started here unless given, with ``world`` instead of the rig
    file's world when given), or ``None`` for real hardware."""
    if rig.twin is None or endpoints is not None:
        yield endpoints
        return
    with start_twin(rig.twin.host, speed=rig.twin.speed, world=world or rig.twin.world) as twin:
        yield twin.endpoints
