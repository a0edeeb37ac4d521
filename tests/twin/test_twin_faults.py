"""The twin takes every fault of the stand-in vocabulary, as the simulation does (tests/sim)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shearlab.devices.stand_in import FAULTS, Fault
from shearlab.devices.twin.serve import build_twin


def test_the_twin_takes_every_fault_of_the_stand_in_vocabulary(loopback_host: Callable[[], str]) -> None:
    twin = build_twin(loopback_host(), speed=10.0)
    try:
        for device, kinds in FAULTS.items():
            for kind in sorted(kinds):
                twin.inject_fault(Fault(device=device, kind=kind, code=7))
        state = twin.bench.state()
        assert state.protective_stopped and state.protective_stop_reason == "injected"
        assert twin.bench.hexapod.take_error() == 7
        with pytest.raises(ValueError, match="no fault"):
            Fault(device="scanner", kind="unplug")
    finally:
        twin.close()
