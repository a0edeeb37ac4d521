"""Exclusive use of each device: Prefect global concurrency limits, one slot per device.

shearlab creates the limits it needs when they are missing, then takes them in strict mode: without
``strict=True`` a missing limit only warns and two flows would drive the same robot.

A process that dies holding a slot (a crash, a kill) leaves it occupied. A Prefect server frees it
when its lease expires; the ephemeral API that a command line without ``PREFECT_API_URL`` starts keeps
its leases in memory and loses them with the process, so the slot would stay taken for good and the
rerun that resumes the campaign would wait forever. With that API every process sharing the database
runs on this machine, so each also holds an OS file lock per device, which the kernel releases when
the holder dies: whoever gets the file lock knows that no live process holds the device, and frees
a slot left behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings

from shearlab.protocols.rig import Rig

# A device is held for a whole campaign; the lease is renewed while held.
LOCK_TIMEOUT_S = 3600.0
# Wall seconds between tries for a device's file lock that another live process holds.
FILE_LOCK_POLL_S = 0.5

logger = logging.getLogger(__name__)


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
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """Exclusive ``flock`` on ``path`` for the block; ``TimeoutError`` if not obtained in ``timeout_s``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path.stem} is held by another process on this machine") from None
                time.sleep(FILE_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)


def free_abandoned_slots(names: list[str]) -> None:
    """Empty the slots of ``names``: only call while holding their file locks (no live holder)."""
    with get_client(sync_client=True) as client:
        for name in names:
            if client.read_global_concurrency_limit_by_name(name).active_slots > 0:
                logger.warning("%s: freeing the slot that a process which died holding it left taken", name)
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


@contextmanager
def hold_devices(rig: Rig, devices: tuple[str, ...]) -> Iterator[None]:
    """Hold the named devices of ``rig`` exclusively for the duration of the block."""
    names = device_lock_names(rig, devices)
    ensure_limits(names)
    with ExitStack() as stack:
        settings = get_current_settings()
        if settings.api.url is None:
            for name in names:
                stack.enter_context(_file_lock(Path(settings.home) / "device-locks" / f"{name}.lock", LOCK_TIMEOUT_S))
            free_abandoned_slots(names)
        stack.enter_context(concurrency(names, occupy=1, strict=True, timeout_seconds=LOCK_TIMEOUT_S))
        yield
