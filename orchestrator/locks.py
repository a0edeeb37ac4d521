"""Exclusive use of each device: Prefect global concurrency limits, one slot per device.

A limit is named after what the device is (``devices.identity``: the robot's host and port, a serial
port, the twin's host), never after a rig file, so two rig files for one robot exclude each other. A run
that finds a device busy says which, held by whom, and how long it will wait.

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
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import MissingContextError, ObjectNotFound
from prefect.settings import get_current_settings

from shearlab.devices.endpoints import Endpoints
from shearlab.devices.errors import DeviceBusyError
from shearlab.devices.identity import DeviceIdentity, device_identity
from shearlab.devices.interfaces import DeviceName
from shearlab.protocols.rig import Rig

# A device is held for a whole campaign; the lease is renewed while held.
LOCK_TIMEOUT_S = 3600.0
# Wall seconds between tries for a device's file lock that another live process holds.
FILE_LOCK_POLL_S = 0.5
# A free device is taken at once; only a run that found it busy says it waits.
FIRST_TRY_S = 2.0

logger = logging.getLogger(__name__)


def device_locks(rig: Rig, devices: tuple[DeviceName, ...], endpoints: Endpoints | None = None) -> dict[str, DeviceIdentity]:
    """``{lock name: identity}`` for the named devices of ``rig`` that anyone else could reach (not the simulated ones)."""
    locks = {}
    for device in devices:
        identity = device_identity(rig, device, endpoints)
        if identity is not None:
            locks[lock_name(identity)] = identity
    return locks


def lock_name(identity: DeviceIdentity) -> str:
    """A name Prefect and the file system accept, one per identity."""
    return "shearlab-" + re.sub(r"[^A-Za-z0-9.]+", "-", f"{identity.kind} {identity.address}").strip("-")


def ensure_limits(names: list[str]) -> None:
    """Create each one-slot limit that does not exist yet."""
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def _say(message: str) -> None:
    """Tell whoever watches: the flow run's log (the UI, the terminal), else this module's."""
    from prefect import get_run_logger

    try:
        get_run_logger().warning(message)
    except MissingContextError:
        logger.warning(message)


def _describe(identities: list[DeviceIdentity]) -> str:
    return ", ".join(f"{i.device} ({i})" for i in identities)


def _busy(identities: list[DeviceIdentity], holder: str, timeout_s: float) -> str:
    return f"{_describe(identities)} in use by {holder}; waiting up to {_duration(timeout_s)}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _held_elsewhere(locks: dict[str, DeviceIdentity]) -> list[DeviceIdentity]:
    """The devices whose slot is taken now (all of them if that cannot be read)."""
    with get_client(sync_client=True) as client:
        held = [identity for name, identity in locks.items() if client.read_global_concurrency_limit_by_name(name).active_slots]
    return held or list(locks.values())


@contextmanager
def _file_lock(path: Path, identity: DeviceIdentity, timeout_s: float) -> Iterator[None]:
    """Exclusive ``flock`` on ``path`` for the block, the holder noted in the file for whoever waits;
    ``DeviceBusyError`` if not obtained in ``timeout_s``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    _say(_busy([identity], _holder(path), timeout_s))
                    waiting = True
                if time.monotonic() > deadline:
                    raise DeviceBusyError(identity.device, f"{identity} still in use by {_holder(path)} after "
                                                           f"{_duration(timeout_s)}") from None
                time.sleep(FILE_LOCK_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}).encode(), 0)
        yield
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        note = json.loads(path.read_text())
        return f"process {note['pid']} (since {note['since']})"
    except (OSError, ValueError, KeyError):
        return "another process on this machine"


def free_abandoned_slots(names: list[str]) -> None:
    """Empty the slots of ``names``: only call while holding their file locks (no live holder)."""
    with get_client(sync_client=True) as client:
        for name in names:
            if client.read_global_concurrency_limit_by_name(name).active_slots > 0:
                logger.warning("%s: freeing the slot that a process which died holding it left taken", name)
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


@contextmanager
def hold_devices(rig: Rig, devices: tuple[DeviceName, ...], endpoints: Endpoints | None = None, *,
                 timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the named devices of ``rig`` exclusively for the duration of the block.

    A device held by another run is waited for, saying so, up to ``timeout_s``; then ``DeviceBusyError``.
    """
    locks = device_locks(rig, devices, endpoints)
    names = list(locks)
    if not names:
        yield
        return
    ensure_limits(names)
    with ExitStack() as stack:
        settings = get_current_settings()
        if settings.api.url is None:
            for name, identity in locks.items():
                stack.enter_context(_file_lock(Path(settings.home) / "device-locks" / f"{name}.lock", identity, timeout_s))
            free_abandoned_slots(names)
        try:
            stack.enter_context(concurrency(names, occupy=1, strict=True, timeout_seconds=min(FIRST_TRY_S, timeout_s)))
        except TimeoutError:
            busy = _held_elsewhere(locks)
            _say(_busy(busy, "another flow run", timeout_s))
            try:
                stack.enter_context(concurrency(names, occupy=1, strict=True, timeout_seconds=timeout_s))
            except TimeoutError:
                raise DeviceBusyError(busy[0].device, f"{', '.join(map(str, busy))} still in use by another flow run after "
                                                      f"{_duration(timeout_s)}") from None
        yield
