"""Exclusive use of each device: Prefect global concurrency limits, one slot per device.

shearlab creates the limits it needs when they are missing, then takes them in strict mode: without
``strict=True`` a missing limit only warns and two flows would drive the same robot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from shearlab.protocols.rig import Rig

# A device is held for a whole campaign; the lease is renewed while held.
LOCK_TIMEOUT_S = 3600.0


def device_lock_names(rig: Rig, devices: tuple[str, ...]) -> list[str]:
    """One limit per physical device: the rig's name and the twin's address keep rigs apart."""
    where = rig.twin.host if rig.twin is not None else rig.name
    return [f"shearlab-{rig.name}-{where}-{device}" for device in devices]


def ensure_limits(names: list[str]) -> None:
    """Create each one-slot limit that does not exist yet."""
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@contextmanager
def hold_devices(rig: Rig, devices: tuple[str, ...]) -> Iterator[None]:
    """Hold the named devices of ``rig`` exclusively for the duration of the block."""
    names = device_lock_names(rig, devices)
    ensure_limits(names)
    with concurrency(names, occupy=1, strict=True, timeout_seconds=LOCK_TIMEOUT_S):
        yield
