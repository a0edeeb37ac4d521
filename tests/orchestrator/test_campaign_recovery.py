"""A device fault with an operator attached: the campaign pauses with a form, the rig safe meanwhile, and
goes on as the operator chooses (retry after replugging the sensor, or skip the position)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from prefect.input.run_input import keyset_from_paused_state

from shearlab.datasets.errors import SessionFileError
from shearlab.datasets.integrity import check_session
from shearlab.datasets.reader import SessionReader
from shearlab.devices.stand_in import Fault, WorldState
from shearlab.devices.twin_client import TwinControl, TwinProcess
from shearlab.orchestrator.flows.acquisition import campaign_flow

pytestmark = pytest.mark.slow

SPEED = 10.0


def _state(twin: TwinProcess) -> WorldState:
    with TwinControl(twin.endpoints.control) as control:
        return control.state()


def _paused_run(campaign: threading.Thread, timeout_s: float = 120.0) -> tuple[UUID, str] | None:
    """The paused campaign run and its form's description; ``None`` once the campaign has ended."""
    deadline = time.monotonic() + timeout_s
    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        while campaign.is_alive():
            assert time.monotonic() < deadline, "the campaign neither paused nor ended"
            runs = client.read_flow_runs(flow_run_filter=paused)
            if runs and runs[0].state is not None:
                keyset = keyset_from_paused_state(runs[0].state)
                try:
                    description = json.loads(client.read_flow_run_input(runs[0].id, keyset["description"]))
                except Exception:  # noqa: BLE001 - the form is saved just after the state: try again
                    time.sleep(0.2)
                    continue
                return runs[0].id, description
            time.sleep(0.2)
    return None


def _wait_for_sequences(path: Path, n: int, outcome: dict[str, Any], timeout_s: float = 150.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert "error" not in outcome, outcome
        try:
            with SessionReader(path) as reader:
                if len(reader.sequences()) >= n:
                    return
        except SessionFileError:
            pass  # not created yet
        time.sleep(0.1)
    raise AssertionError(f"{path}: fewer than {n} sequences after {timeout_s} s")


def _run_in_thread(**kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = campaign_flow(**kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="campaign", daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("action", ["retry", "skip"])
def test_an_operator_decides_what_a_device_fault_costs(action: str, campaign_plan, tmp_path: Path, twin_factory, rig_file,
                                                      prefect_harness) -> None:
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=2, pushes=(0.0,), name="recover")
    thread, outcome = _run_in_thread(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints, on_fault="ask")
    _wait_for_sequences(tmp_path / "sessions" / "recover_block_10p0.h5", 1, outcome)
    with TwinControl(twin.endpoints.control) as control:
        control.inject_fault(Fault(device="probe_ft", kind="unplug"))  # the cable is pulled after position 0
    paused = _paused_run(thread)
    assert paused is not None, outcome
    run_id, description = paused
    assert "probe_ft failed" in description and "position 1" in description and "retry" in description
    # Meanwhile the rig is safe: no contact, no protective stop.
    state = _state(twin)
    assert state.probe_force_n == 0.0 and not state.protective_stopped
    with TwinControl(twin.endpoints.control) as control:
        control.inject_fault(Fault(device="probe_ft", kind="replug"))
    resume_flow_run(run_id, run_input={"action": action})
    # A sensor just plugged back in may miss its first answer on a loaded machine: the operator answers again.
    for _ in range(2):
        if (again := _paused_run(thread)) is None:
            break
        resume_flow_run(again[0], run_input={"action": action})
    thread.join(timeout=180)
    assert not thread.is_alive() and "error" not in outcome, outcome
    summary = outcome["summary"]
    if action == "retry":
        assert summary.written == 2 and summary.skipped_positions == []
    else:
        assert summary.written == 1 and summary.skipped_positions == ["block_10p0 position 1"]
    assert all(check_session(session).ok for session in summary.sessions)
    assert _state(twin).probe_force_n == 0.0
