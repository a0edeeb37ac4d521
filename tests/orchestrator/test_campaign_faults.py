"""Acquisition and calibration flows under faults: a killed campaign, injected device faults.

Each test drives a twin on its own loopback address and injects the fault through the twin's
control endpoint, from a monitor thread that also records the largest contact force the twin saw.
Whatever the fault, the outcome is clear (a typed error naming the device, or a completed campaign)
and the hardware is left safe: probe force never above the rig's 1.0 N limit, arm lifted or stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import pytest

from shearlab.datasets.errors import SessionFileError
from shearlab.datasets.integrity import check_session
from shearlab.datasets.reader import SessionReader
from shearlab.datasets.records import sequence_key
from shearlab.devices.errors import DeviceConnectionError, DeviceError
from shearlab.devices.hexapod.pi_gcs import GCSError
from shearlab.devices.stand_in import Fault, WorldState
from shearlab.devices.twin_client import TwinControl, TwinProcess
from shearlab.orchestrator.flows.acquisition import campaign_flow
from shearlab.orchestrator.flows.calibration import calibration_flow
from shearlab.protocols.plans import load_campaign_plan

pytestmark = pytest.mark.slow

SPEED = 10.0
# The rig's max_contact_force_n (rigs/twin.toml) and the hexapod's max_force_n.
MAX_CONTACT_FORCE_N = 1.0
MAX_INDENTER_FORCE_N = 2.5
SHEARLAB = Path(sys.executable).with_name("shearlab")


def twin_state(twin: TwinProcess) -> WorldState:
    with TwinControl(twin.endpoints.control) as control:
        return control.state()


class Monitor:
    """Polls the twin's state at ~20 Hz wall, keeps the peak forces, and injects ``fault`` the first time
    ``when(state)`` holds."""

    def __init__(self, twin: TwinProcess, *, when: Callable[[WorldState], bool] | None = None,
                 fault: Fault | None = None) -> None:
        self.twin, self.when, self.fault = twin, when, fault
        self.peak_probe_force_n = 0.0
        self.peak_indenter_force_n = 0.0
        self.injected_state: WorldState | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-monitor", daemon=True)

    def _run(self) -> None:
        with TwinControl(self.twin.endpoints.control) as control:
            while not self._stop.wait(0.05):
                state = control.state()
                self.peak_probe_force_n = max(self.peak_probe_force_n, state.probe_force_n)
                self.peak_indenter_force_n = max(self.peak_indenter_force_n, state.indenter_force_n)
                if self.fault and self.injected_state is None and self.when is not None and self.when(state):
                    control.inject_fault(self.fault)
                    self.injected_state = state

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def complete_sequences(path: Path) -> int:
    """Complete sequences in a session a live writer may be appending to (0 while unreadable)."""
    if not path.exists():
        return 0
    try:
        with SessionReader(path) as reader:
            return len(reader.sequences())
    except (SessionFileError, OSError):
        return 0


def assert_sessions_sound(plan_path: Path) -> list[Any]:
    """Every session verifies, and no force trace written to it passes the contact limit."""
    plan = load_campaign_plan(plan_path)
    refs = []
    for path in sorted(plan.out_dir.glob("*.h5")):
        report = check_session(path)
        assert report.ok, report.problems
        with SessionReader(path) as reader:
            for ref in reader.sequences():
                record = reader.read_sequence(ref.key)
                assert float(record.contact_force_n.max()) <= MAX_CONTACT_FORCE_N
                refs.append(record)
    return refs


def _cli_env(tmp_path: Path) -> dict[str, str]:
    """The CLI's own ephemeral Prefect API, its database under ``tmp_path`` (shared by both runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    # The ephemeral server's start takes longer than Prefect's default 20 s on a busy 2-core machine.
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    return env


def test_killed_campaign_is_stopped_by_the_watchdog_and_a_rerun_completes_it(campaign_plan, tmp_path, twin_factory, rig_file):
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=2, pushes=(-8.0, 8.0), name="faults")
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(twin.endpoints.model_dump_json())
    command = [str(SHEARLAB), "acquire", str(rig_file(twin.host, SPEED)), str(plan_path), "--endpoints", str(endpoints)]
    session = tmp_path / "sessions" / "faults_block_10p0.h5"
    env = _cli_env(tmp_path)

    with Monitor(twin) as monitor:
        with open(tmp_path / "first.log", "w") as log:
            # Its own process group: the kill takes the CLI's ephemeral API server with it, as a crash would.
            first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                deadline = time.monotonic() + 150
                while complete_sequences(session) < 1:
                    assert first.poll() is None, (tmp_path / "first.log").read_text()
                    assert time.monotonic() < deadline, "no sequence written within 150 s"
                    time.sleep(0.2)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=10)
        killed_at = time.monotonic()
        # The controller's watchdog (1 Hz: 1 s of wall time) stops the arm of a client that died, moving
        # or at rest: nothing kicks it any more.
        while True:
            state = twin_state(twin)
            if state.protective_stopped or time.monotonic() - killed_at > 5.0:
                break
            time.sleep(0.1)
        assert state.protective_stopped and "watchdog" in (state.protective_stop_reason or ""), state
        assert state.probe_force_n <= MAX_CONTACT_FORCE_N
        written_before = complete_sequences(session)
        assert 1 <= written_before < 4

        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=150, check=False)
    output = rerun.stdout + rerun.stderr
    (tmp_path / "rerun.log").write_text(output)
    assert rerun.returncode == 0, output
    # The campaign start asked the operator (here the twin) to check before unlocking.
    assert "operator check (confirmed by the twin)" in output and "protective stop" in output
    state = twin_state(twin)
    assert not state.protective_stopped and state.probe_force_n == 0.0
    assert monitor.peak_probe_force_n <= MAX_CONTACT_FORCE_N

    records = assert_sessions_sound(plan_path)
    keys = [r.key for r in records]
    assert sorted(keys) == sorted(sequence_key(p, k) for p in range(2) for k in (1, 2))
    assert all(r.qc.passed and not r.failed for r in records)


def test_protective_stop_during_contact_fails_naming_the_robot(campaign_plan, tmp_path, twin_factory, rig_file, prefect_harness):
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=1, pushes=(0.0,), name="faults")
    # Inject as the probe touches the gel, before contact has settled at 0.2 N.
    with Monitor(twin, when=lambda s: s.probe_force_n > 0.02, fault=Fault(device="robot", kind="protective_stop")) as monitor, \
            pytest.raises(DeviceError) as caught:
        campaign_flow(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints)
    assert monitor.injected_state is not None
    assert caught.value.device == "robot" and "protective stop" in str(caught.value)
    state = twin_state(twin)
    assert state.protective_stopped
    assert state.probe_force_n <= MAX_CONTACT_FORCE_N
    assert monitor.peak_probe_force_n <= MAX_CONTACT_FORCE_N
    assert_sessions_sound(plan_path)


def test_probe_sensor_unplugged_mid_campaign_fails_naming_it_and_keeps_the_data(campaign_plan, tmp_path, twin_factory, rig_file,
                                                                                prefect_harness):
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=1, pushes=(-8.0, 0.0, 8.0), name="faults")
    session = tmp_path / "sessions" / "faults_block_10p0.h5"
    with Monitor(twin, when=lambda s: complete_sequences(session) >= 1, fault=Fault(device="probe_ft", kind="unplug")) as monitor, \
            pytest.raises(DeviceError) as caught:
        campaign_flow(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints)
    assert monitor.injected_state is not None
    assert caught.value.device == "probe_ft" and isinstance(caught.value, DeviceConnectionError), caught.value
    # The probe was lifted clear (the robot itself is fine, so no protective stop is needed).
    state = twin_state(twin)
    assert state.probe_force_n == 0.0 and not state.protective_stopped
    assert monitor.peak_probe_force_n <= MAX_CONTACT_FORCE_N
    records = assert_sessions_sound(plan_path)
    assert 1 <= len(records) < 3 and all(r.qc.passed for r in records)


def test_scanner_fault_is_reacquired_and_the_campaign_completes(campaign_plan, tmp_path, twin_factory, rig_file, prefect_harness):
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=1, pushes=(-8.0, 8.0), name="faults")
    with TwinControl(twin.endpoints.control) as control:
        control.inject_fault(Fault(device="scanner", kind="fault", message="HV supply tripped"))  # the next FIRE
    with Monitor(twin) as monitor:
        summary = campaign_flow(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints)
    assert summary.written == 2 and summary.failed == 0
    records = {r.key: r for r in assert_sessions_sound(plan_path)}
    assert records[sequence_key(0, 1)].attempt == 2 and records[sequence_key(0, 2)].attempt == 1
    state = twin_state(twin)
    assert state.probe_force_n == 0.0 and not state.protective_stopped
    assert monitor.peak_probe_force_n <= MAX_CONTACT_FORCE_N


def test_scanner_fault_on_the_last_attempt_is_recorded_as_failed_with_its_reason(campaign_plan, tmp_path, twin_factory, rig_file,
                                                                                 prefect_harness):
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=1, pushes=(-8.0, 8.0), max_attempts=1, name="faults")
    with TwinControl(twin.endpoints.control) as control:
        control.inject_fault(Fault(device="scanner", kind="fault", message="HV supply tripped"))
    summary = campaign_flow(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints)
    assert summary.written == 1 and summary.failed == 1
    records = {r.key: r for r in assert_sessions_sound(plan_path)}
    failed = records[sequence_key(0, 1)]
    assert failed.failed and failed.label is None and failed.displacement_um is None
    assert "HARDWARE_FAULT" in failed.failure_reason and "HV supply tripped" in failed.failure_reason
    assert not records[sequence_key(0, 2)].failed
    assert twin_state(twin).probe_force_n == 0.0


def test_gcs_error_during_calibration_is_typed_and_halts_the_hexapod(tmp_path, twin_factory, rig_file, calibration_plan,
                                                                     prefect_harness):
    speed = 200.0
    twin = twin_factory(speed=speed)
    plan_path = calibration_plan(tmp_path, {"T-10": 10.0}, name="faults")
    with Monitor(twin, when=lambda s: s.cylinder is not None, fault=Fault(device="hexapod", kind="error", code=7)) as monitor, \
            pytest.raises(GCSError) as caught:
        calibration_flow(rig=rig_file(twin.host, speed), plan=plan_path, endpoints=twin.endpoints)
    assert monitor.injected_state is not None
    assert caught.value.device == "hexapod" and caught.value.code == 7
    assert "hexapod" in str(caught.value) and "GCS error 7" in str(caught.value)
    # Halted: the plate no longer moves.
    before = twin_state(twin)
    time.sleep(0.2)
    after = twin_state(twin)
    assert after.plate_z_mm == before.plate_z_mm
    assert after.indenter_force_n <= MAX_INDENTER_FORCE_N
    assert monitor.peak_indenter_force_n <= MAX_INDENTER_FORCE_N
