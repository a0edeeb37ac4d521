"""Every device procedure against the simulated devices: contact control, lift, fire + Loupas + QC,
indentation. Each test runs in a fraction of a second on the simulation's virtual clock."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest

from shearlab.datasets.errors import DiskFullError, SessionWriteError
from shearlab.datasets.integrity import check_session
from shearlab.datasets.records import Label
from shearlab.datasets.writer import SessionWriter
from shearlab.devices.connect import RigDevices
from shearlab.devices.errors import DeviceConnectionError, DeviceTimeoutError, SafetyLimitError
from shearlab.devices.interfaces import Robot
from shearlab.devices.sim import SimulatedRig
from shearlab.devices.stand_in import Fault
from shearlab.orchestrator.flows.acquisition import acquire_position, session_info
from shearlab.orchestrator.procedures import contact as contact_procedure
from shearlab.orchestrator.procedures.contact import lift_clear, make_contact
from shearlab.orchestrator.procedures.indentation import indent
from shearlab.orchestrator.procedures.qc import check_sequence
from shearlab.orchestrator.procedures.sequence import acquire_sequence
from shearlab.protocols.phantoms import Cylinder
from shearlab.protocols.plans import BlockTarget, CampaignPlan, ContactSettings, IndentationSettings, QcSettings
from shearlab.protocols.rig import HexapodLimits
from shearlab.protocols.sequences import ImagingSpec, PushSpec, SequenceSpec

# block_10p0 and block_17p5 of the default world: centres and 100 mm tops.
BLOCK_10 = np.array([0.055, 0.200, 0.100])
BLOCK_17 = np.array([-0.055, 0.320, 0.100])
# A smaller image than the paper's 250 x 600 keeps each shot short: 150 x 120 px at the paper's pitch,
# 12 mm deep (past the push's 10 mm focus) and 6.6 mm wide around a push at -2 mm.
SMALL_IMAGING = ImagingSpec(n_frames=20, n_depth=150, n_lateral=120, depth_mm=150 * 0.08, width_mm=120 * 0.055)


def _contact(devices: RigDevices, surface: np.ndarray = BLOCK_10, *, max_force_n: float = 1.0,
             settings: ContactSettings = ContactSettings()) -> contact_procedure.ContactResult:
    return make_contact(devices.robot, devices.probe_ft, devices.clock, surface_xyz_m=surface, settings=settings,
                        max_force_n=max_force_n, speed_m_s=0.1, accel_m_s2=0.5)


def _state(devices: RigDevices):  # type: ignore[no-untyped-def]
    assert devices.stand_in is not None
    return devices.stand_in.state()


# -- contact control --------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", [BLOCK_10, BLOCK_17], ids=["10 %", "17.5 %"])
def test_contact_converges_to_the_target_force_and_holds_it(sim_devices: RigDevices, surface: np.ndarray) -> None:
    settings = ContactSettings()
    result = _contact(sim_devices, surface, settings=settings)
    assert result.force_n == pytest.approx(settings.target_force_n, abs=settings.tolerance_n)
    # The world agrees with the sensor: the probe really presses at 0.2 N, and the arm is at rest.
    state = _state(sim_devices)
    assert state.probe_force_n == pytest.approx(settings.target_force_n, abs=2 * settings.tolerance_n)
    before = state.robot_pose
    sim_devices.clock.sleep(1.0)
    assert _state(sim_devices).robot_pose == before
    # Approach never overshoots the target by more than the tolerance.
    assert max(f for _, f in result.force_trace) <= settings.target_force_n + 2 * settings.tolerance_n


def test_contact_stops_the_arm_the_moment_the_force_limit_is_passed(sim_devices: RigDevices) -> None:
    # A limit below the target: the loop must stop the arm when the force crosses it.
    with pytest.raises(SafetyLimitError, match="exceeds the limit") as info:
        _contact(sim_devices, max_force_n=0.1)
    assert info.value.device == "robot"
    stopped = _state(sim_devices)
    # One loop step (a record and a command, ~13 ms at <= 2 mm/s) past the limit at most, then at rest.
    assert stopped.probe_force_n < 0.1 + 0.05
    sim_devices.clock.sleep(1.0)
    assert _state(sim_devices).robot_pose == stopped.robot_pose


def test_contact_gain_is_bounded_by_the_measured_loop_delay(sim_devices: RigDevices) -> None:
    # Asked for a gain 100x what the loop can stand at this contact stiffness and delay: without the
    # bound gain x stiffness x delay would be ~50, a diverging oscillation; with it the loop settles.
    greedy = ContactSettings(gain_m_s_per_n=0.4, max_speed_m_s=0.01)
    result = _contact(sim_devices, settings=greedy)
    assert result.force_n == pytest.approx(greedy.target_force_n, abs=greedy.tolerance_n)
    assert max(f for _, f in result.force_trace) < 2 * greedy.target_force_n


class SaggingRobot:
    """A robot whose arm keeps sinking 0.3 mm after it is told to stop: a worn brake."""

    def __init__(self, robot: Robot, sim: SimulatedRig) -> None:
        self._robot, self._sim = robot, sim
        self.name = robot.name

    def __getattr__(self, name: str) -> object:
        return getattr(self._robot, name)

    def stop(self) -> None:
        self._robot.stop()
        sag = self._robot.tcp_pose()
        sag[2] -= 0.3e-3
        self._sim.bench.robot.move_linear(sag, 0.005, 0.5)


def test_contact_that_drifts_after_settling_is_refused(sim_devices: RigDevices) -> None:
    sim = sim_devices.stand_in
    assert isinstance(sim, SimulatedRig)
    sagging = SaggingRobot(sim_devices.robot, sim)
    with pytest.raises(DeviceTimeoutError, match="drifted"):
        make_contact(sagging, sim_devices.probe_ft, sim_devices.clock, surface_xyz_m=BLOCK_10,  # type: ignore[arg-type]
                     settings=ContactSettings(), max_force_n=1.0, speed_m_s=0.1, accel_m_s2=0.5)


def test_no_contact_within_the_timeout_is_a_timeout_with_the_arm_stopped(sim_devices: RigDevices) -> None:
    # A surface 20 mm above the real one: the probe descends through air until the timeout.
    air = BLOCK_10 + np.array([0.0, 0.0, 0.020])
    with pytest.raises(DeviceTimeoutError, match="no contact"):
        _contact(sim_devices, air, settings=ContactSettings(timeout_s=2.0))
    stopped = _state(sim_devices)
    sim_devices.clock.sleep(1.0)
    assert _state(sim_devices).robot_pose == stopped.robot_pose and stopped.probe_force_n == 0.0


def test_lift_clear_raises_the_probe_only_when_below(sim_devices: RigDevices) -> None:
    _contact(sim_devices)
    robot = sim_devices.robot
    lift_clear(robot, clearance_z_m=0.115, speed_m_s=0.1, accel_m_s2=0.5)
    assert robot.tcp_pose()[2] == pytest.approx(0.115) and _state(sim_devices).probe_force_n == 0.0
    before = sim_devices.clock.now()
    lift_clear(robot, clearance_z_m=0.110, speed_m_s=0.1, accel_m_s2=0.5)
    assert sim_devices.clock.now() == before, "already clear: nothing to do"


# -- fire, Loupas, quality gate -----------------------------------------------------------------------


def _shot(devices: RigDevices, *, target_force_n: float = 0.2, qc: QcSettings = QcSettings()):  # type: ignore[no-untyped-def]
    sequence = SequenceSpec(push=PushSpec(lateral_mm=-2.0), imaging=SMALL_IMAGING)
    return acquire_sequence(devices.robot, devices.probe_ft, devices.scanner, devices.clock, sequence,
                            target_force_n=target_force_n, qc=qc)


def test_a_shot_in_contact_passes_the_quality_gate(sim_devices: RigDevices) -> None:
    _contact(sim_devices)
    sim_devices.robot.set_watchdog(1.0)
    outcome = _shot(sim_devices)
    assert outcome.qc.passed, outcome.qc
    assert outcome.displacement_um is not None and outcome.displacement_um.shape == (20, 150, 120)
    assert outcome.qc.figures["peak_um"] > 1.0 and outcome.qc.figures["frame_correlation"] > 0.9
    assert np.all(np.abs(outcome.force_n - 0.2) < 0.05)
    assert not sim_devices.robot.is_protective_stopped()


def test_consecutive_shots_wait_for_the_push_duty_limit_instead_of_failing(sim_devices: RigDevices) -> None:
    _contact(sim_devices)
    first = _shot(sim_devices)
    second = _shot(sim_devices)
    assert first.qc.passed and second.qc.passed, second.qc
    assert first.result is not None and second.result is not None
    assert sim_devices.scanner.read_state().pushes == 2


def test_a_shot_off_the_target_force_fails_naming_the_force(sim_devices: RigDevices) -> None:
    _contact(sim_devices)
    outcome = _shot(sim_devices, target_force_n=0.4)
    assert not outcome.qc.passed and "contact force off" in outcome.qc.reason


def test_a_refused_shot_fails_naming_the_scanner_reason(sim_devices: RigDevices) -> None:
    _contact(sim_devices)
    assert sim_devices.stand_in is not None
    sim_devices.stand_in.inject_fault(Fault(device="scanner", kind="fault", message="HV supply tripped"))
    refused = _shot(sim_devices)
    assert not refused.qc.passed and "HARDWARE_FAULT" in refused.qc.reason and refused.displacement_um is None
    # The next attempt's CONFIGURE re-arms the scanner.
    assert _shot(sim_devices).qc.passed


def test_quality_gate_rejects_a_shot_without_a_wave(sim_devices: RigDevices) -> None:
    _contact(sim_devices)
    good = _shot(sim_devices)
    assert good.displacement_um is not None and good.iq is not None
    settings = QcSettings()
    kwargs = {"force_before_n": 0.2, "force_after_n": 0.2, "target_force_n": 0.2, "settings": settings}
    assert check_sequence(good.displacement_um, good.iq, **kwargs).passed
    still = np.random.default_rng(0).normal(0.0, 0.05, good.displacement_um.shape).astype(np.float32)
    verdict = check_sequence(still, good.iq, **kwargs)
    assert not verdict.passed and "peak displacement" in verdict.reason
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(good.iq.shape) + 1j * rng.standard_normal(good.iq.shape)).astype(np.complex64)
    verdict = check_sequence(good.displacement_um, noise, **kwargs)
    assert not verdict.passed and "decorrelated" in verdict.reason


def test_a_device_error_mid_position_lifts_the_probe(sim_devices: RigDevices, tmp_path: Path) -> None:
    block = BlockTarget(name="block_10p0", batch_id="B1-10.0", concentration_pct=10.0, x_mm=55.0, y_mm=200.0)
    plan = CampaignPlan(name="lift", blocks=(block,), n_positions=1, push_lateral_mm=(-2.0, 2.0), imaging=SMALL_IMAGING,
                        out_dir=tmp_path, calibration_dir=tmp_path)
    assert sim_devices.stand_in is not None
    label = Label(e_kpa=54.0, e_kpa_std=1.0, calibration_id="cal-test")
    with SessionWriter.open(tmp_path / "lift.h5", session=session_info(plan, block, sim_devices.rig), resume=True) as writer:
        sim_devices.stand_in.inject_fault(Fault(device="scanner", kind="drop"))
        with pytest.raises(DeviceConnectionError):
            acquire_position.fn(sim_devices, writer, plan, block, 0, np.array([55.0, 200.0]), label)
        assert writer.completed_keys() == set()
    state = _state(sim_devices)
    clearance_z_m = (plan.table_z_mm + block.size_mm[2] + plan.contact.lift_clearance_mm) * 1e-3
    assert state.probe_force_n == 0.0 and state.robot_pose[2] == pytest.approx(clearance_z_m)


def _lift_plan(tmp_path: Path) -> tuple[BlockTarget, CampaignPlan, Label]:
    block = BlockTarget(name="block_10p0", batch_id="B1-10.0", concentration_pct=10.0, x_mm=55.0, y_mm=200.0)
    plan = CampaignPlan(name="lift", blocks=(block,), n_positions=1, push_lateral_mm=(-2.0, 2.0), imaging=SMALL_IMAGING,
                        out_dir=tmp_path, calibration_dir=tmp_path)
    return block, plan, Label(e_kpa=54.0, e_kpa_std=1.0, calibration_id="cal-test")


def test_the_first_device_to_fail_is_the_one_named(sim_devices: RigDevices, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The link to the whole rig dies while the scanner fires: lifting the probe fails too, and the error
    still names the scanner, with the robot's failure noted after it."""
    block, plan, label = _lift_plan(tmp_path)
    dead: list[str] = []

    def scanner_dies(**_: object) -> None:
        dead.append("scanner")
        raise DeviceConnectionError("scanner", "connection lost")

    def robot_call(method):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            if dead:
                raise DeviceConnectionError("robot", "RTDE link lost")
            return method(*args, **kwargs)
        return call

    monkeypatch.setattr(sim_devices.scanner, "fire", scanner_dies)
    for name in ("tcp_pose", "stop", "move_linear"):
        monkeypatch.setattr(sim_devices.robot, name, robot_call(getattr(sim_devices.robot, name)))
    with SessionWriter.open(tmp_path / "lift.h5", session=session_info(plan, block, sim_devices.rig), resume=True) as writer, \
            pytest.raises(DeviceConnectionError) as caught:
        acquire_position.fn(sim_devices, writer, plan, block, 0, np.array([55.0, 200.0]), label)
    assert caught.value.device == "scanner" and str(caught.value) == "scanner: connection lost"
    assert any("while lifting the probe clear" in note and "robot: RTDE link lost" in note for note in caught.value.__notes__)


def test_a_full_disk_stops_a_position_before_the_probe_moves(sim_devices: RigDevices, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    block, plan, label = _lift_plan(tmp_path)
    before = _state(sim_devices).robot_pose
    with SessionWriter.open(tmp_path / "lift.h5", session=session_info(plan, block, sim_devices.rig), resume=True) as writer:
        monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))  # type: ignore[attr-defined]
        with pytest.raises(DiskFullError, match=f"{tmp_path}: 1 MiB free, 2 sequences of lift_block_10p0 needs"):
            acquire_position.fn(sim_devices, writer, plan, block, 0, np.array([55.0, 200.0]), label)
    assert np.array_equal(_state(sim_devices).robot_pose, before)


def test_a_write_that_fails_mid_position_lifts_the_probe_and_the_session_resumes(sim_devices: RigDevices, tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    block, plan, label = _lift_plan(tmp_path)
    path, info = tmp_path / "lift.h5", session_info(plan, block, sim_devices.rig)
    with SessionWriter.open(path, session=info, resume=True) as writer:
        rows = {"n": 0}
        real_write_row = writer._seq.write_row

        def write_row(row: int, values: dict[str, object]) -> None:  # the second sequence meets a full disk
            rows["n"] += 1
            if rows["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_write_row(row, values)

        monkeypatch.setattr(writer._seq, "write_row", write_row)
        with pytest.raises(SessionWriteError, match="cannot write \\(No space left on device\\).*rerun to resume"):
            acquire_position.fn(sim_devices, writer, plan, block, 0, np.array([55.0, 200.0]), label)
        assert writer.completed_keys() == {"p000_push1"}
        assert not (tmp_path / "lift.h5.reserve").exists()  # given back for HDF5 to close in
    clearance_z_m = (plan.table_z_mm + block.size_mm[2] + plan.contact.lift_clearance_mm) * 1e-3
    assert _state(sim_devices).robot_pose[2] == pytest.approx(clearance_z_m)
    with SessionWriter.open(path, session=info, resume=True) as writer:
        acquire_position.fn(sim_devices, writer, plan, block, 0, np.array([55.0, 200.0]), label)
        assert writer.completed_keys() == {"p000_push1", "p000_push2"}
    assert check_session(path).ok


# -- indentation --------------------------------------------------------------------------------------

# Ten times the paper's plate speed: the same stops, a tenth of the samples.
FAST_INDENTATION = IndentationSettings(plate_speed_mm_s=0.1)


def _indent(devices: RigDevices, concentration_pct: float, *, settings: IndentationSettings = FAST_INDENTATION,
            limits: HexapodLimits | None = None):  # type: ignore[no-untyped-def]
    assert devices.stand_in is not None
    devices.stand_in.place_cylinder(Cylinder(batch_id=f"T-{concentration_pct}", concentration_pct=concentration_pct, index=0))
    return indent(devices.hexapod, devices.indenter_ft, devices.clock, settings, limits or devices.rig.hexapod.limits,
                  length_mm=40.0)


def test_indentation_stops_at_the_stop_force_and_retracts(sim_devices: RigDevices) -> None:
    log = _indent(sim_devices, 17.5)
    assert log.stop_reason.startswith("force") and log.stop_reason.endswith("reached")
    # Halted within the sample that reached 2 N: at 0.1 mm/s and 40 N/strain, one sample adds < 0.01 N.
    assert FAST_INDENTATION.stop_force_n <= log.force_n.max() < FAST_INDENTATION.stop_force_n + 0.02
    state = _state(sim_devices)
    assert state.plate_z_mm == pytest.approx(0.0) and state.indenter_force_n == 0.0
    assert np.all(np.diff(log.time_s) > 0) and np.all(np.diff(log.plate_z_mm) <= 1e-9)


def test_indentation_stops_at_the_rig_force_cap_below_the_stop_force(sim_devices: RigDevices) -> None:
    capped = HexapodLimits(max_force_n=1.0)
    log = _indent(sim_devices, 17.5, limits=capped)
    assert 1.0 <= log.force_n.max() < 1.02 and "reached" in log.stop_reason


def test_a_soft_cylinder_stops_on_strain(sim_devices: RigDevices) -> None:
    log = _indent(sim_devices, 10.0)
    assert log.stop_reason == f"strain {FAST_INDENTATION.max_strain:.0%} reached"
    assert log.force_n.max() < FAST_INDENTATION.stop_force_n


def test_indentation_without_a_cylinder_times_out_and_retracts(sim_devices: RigDevices) -> None:
    with pytest.raises(DeviceTimeoutError, match="no touch"):
        indent(sim_devices.hexapod, sim_devices.indenter_ft, sim_devices.clock, FAST_INDENTATION,
               sim_devices.rig.hexapod.limits, length_mm=40.0)
    assert _state(sim_devices).plate_z_mm == pytest.approx(0.0)
