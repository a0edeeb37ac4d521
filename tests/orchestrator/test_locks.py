"""Device locks are keyed by what a device is, not by what a rig file calls itself."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shearlab.devices.errors import DeviceBusyError
from shearlab.devices.identity import device_identity
from shearlab.orchestrator.locks import _file_lock, device_locks, hold_devices
from shearlab.protocols.rig import Rig, load_rig

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ("robot", "probe_ft", "scanner")


def lab_rig(name: str, robot_host: str, probe_serial: str = "/dev/ttyUSB0") -> Rig:
    return Rig.model_validate({
        "name": name, "robot": {"host": robot_host},
        "hexapod": {"host": "10.0.0.9"}, "probe_ft": {"sensor": "nano43", "serial": probe_serial},
        "indenter_ft": {"sensor": "nano17", "serial": "/dev/ttyUSB1"}, "scanner": {"host": "10.0.0.7", "port": 7000},
    })


def test_two_rig_files_for_the_same_robot_take_the_same_locks() -> None:
    assert device_locks(lab_rig("rig-a", "127.0.0.1"), DEVICES) == device_locks(lab_rig("bench-2", "localhost"), DEVICES)
    # The same name on another arm is another device.
    assert device_locks(lab_rig("rig-a", "10.0.0.3"), ("robot",)) != device_locks(lab_rig("rig-a", "10.0.0.2"), ("robot",))
    twin = load_rig(ROOT / "rigs" / "twin.toml")
    renamed = twin.model_copy(update={"name": "someone-else"})
    assert device_locks(twin, DEVICES) == device_locks(renamed, DEVICES)
    assert str(device_identity(twin, "robot")) == "UR controller 127.0.0.5:30004"
    # Simulated devices belong to their process alone.
    assert device_locks(load_rig(ROOT / "rigs" / "sim.toml"), DEVICES) == {}


@pytest.fixture
def said() -> Iterator[list[str]]:
    """What the locks told whoever watches (outside a flow run: their module's log)."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("shearlab.orchestrator.locks")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def test_a_second_process_waiting_for_a_device_is_told_who_holds_it(tmp_path: Path, said: list[str]) -> None:
    identity = device_identity(lab_rig("rig-a", "10.0.0.2"), "robot")
    assert identity is not None
    path = tmp_path / "robot.lock"
    with _file_lock(path, identity, timeout_s=1.0):
        # flock excludes open file descriptions, so a second open in this process stands for another process.
        started = time.monotonic()
        with pytest.raises(DeviceBusyError) as caught, _file_lock(path, identity, timeout_s=0.6):
            pass
    assert 0.5 < time.monotonic() - started < 5
    assert caught.value.device == "robot"
    assert re.search(rf"UR controller 10.0.0.2:30004 still in use by process {os.getpid()} \(since .*\) after 1 s", str(caught.value))
    assert len(said) == 1 and said[0].startswith(f"robot (UR controller 10.0.0.2:30004) in use by process {os.getpid()}")
    assert said[0].endswith("waiting up to 1 s")
    with _file_lock(path, identity, timeout_s=0.1):
        pass


@pytest.mark.slow
def test_two_rig_files_for_the_same_robot_exclude_each_other(prefect_harness: None, said: list[str]) -> None:
    first, second = lab_rig("rig-a", "127.0.0.1"), lab_rig("bench-2", "localhost")
    with hold_devices(first, ("robot",)):
        with pytest.raises(DeviceBusyError, match="UR controller 127.0.0.1:30004 still in use"):
            with hold_devices(second, ("robot", "probe_ft"), timeout_s=3.0):
                pass
        assert said == ["robot (UR controller 127.0.0.1:30004) in use by another flow run; waiting up to 3 s"]
        # A robot of its own is free at once.
        with hold_devices(lab_rig("rig-a", "10.0.0.3", probe_serial="/dev/ttyUSB5"), ("robot", "probe_ft"), timeout_s=3.0):
            pass
    with hold_devices(second, ("robot", "probe_ft"), timeout_s=3.0):
        pass
