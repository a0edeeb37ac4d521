"""The simulated devices keep the device contracts, take every fault the twin takes, and run on a
clock that only moves when someone waits."""

from __future__ import annotations

import numpy as np
import pytest
from device_contract import check_force_sensor, check_hexapod, check_robot, check_scanner

from shearlab.devices.connect import RigDevices
from shearlab.devices.errors import DeviceConnectionError, DeviceFaultError, DeviceProtocolError, DeviceTimeoutError
from shearlab.devices.hexapod import GCSError
from shearlab.devices.scanner import ScannerRefusedError
from shearlab.devices.sim import SimClock, SimulatedRig
from shearlab.devices.stand_in import FAULTS, Fault
from shearlab.protocols.phantoms import Cylinder
from shearlab.protocols.sequences import ImagingSpec, SequenceSpec

# Parked where the twin parks the arm: above the tallest phantom, probe pointing down.
HOME = np.array([0.0, 0.20, 0.25, np.pi, 0.0, 0.0])
SMALL = SequenceSpec(imaging=ImagingSpec(n_frames=4, n_depth=16, n_lateral=24))
# block_10p0 of the default world: centre (55, 200) mm, top at z = 100 mm.
ABOVE_BLOCK = np.array([0.055, 0.200, 0.105, np.pi, 0.0, 0.0])


def test_simulated_devices_keep_the_device_contracts(sim_devices: RigDevices) -> None:
    check_robot(sim_devices.robot, HOME)
    # The probe's Nano43 carries the probe's weight; nothing touches the probe face.
    weight_n = sim_devices.stand_in.bench.world.config.probe.weight_n  # type: ignore[union-attr]
    check_force_sensor(sim_devices.probe_ft, np.array([0.0, 0.0, weight_n]), resolution_n=1 / 128)
    check_hexapod(sim_devices.hexapod)
    check_scanner(sim_devices.scanner, SMALL)


def test_the_simulation_takes_every_fault_of_the_stand_in_vocabulary(sim_devices: RigDevices) -> None:
    sim = sim_devices.stand_in
    assert isinstance(sim, SimulatedRig)
    for device, kinds in FAULTS.items():
        for kind in kinds:
            sim.inject_fault(Fault(device=device, kind=kind, code=7))
    # The last of each device's faults is the one in force; the robot is stopped whatever came after.
    assert sim.state().protective_stopped


def test_sensor_cable_faults_surface_as_typed_errors_and_gaps(sim_devices: RigDevices) -> None:
    sim, sensor = sim_devices.stand_in, sim_devices.probe_ft
    assert sim is not None
    first = sensor.read()
    sim.inject_fault(Fault(device="probe_ft", kind="drop_records", n=3))
    assert sensor.read().seq == first.seq + 4
    sim.inject_fault(Fault(device="probe_ft", kind="garbage", n_bytes=8))
    with pytest.raises(DeviceProtocolError) as garbled:
        sensor.read()
    assert garbled.value.transient
    sensor.read()
    sim.inject_fault(Fault(device="probe_ft", kind="unplug"))
    with pytest.raises(DeviceConnectionError, match="unplugged"):
        sensor.read()
    sim.inject_fault(Fault(device="probe_ft", kind="replug"))
    sensor.read()


def test_robot_stream_stall_protective_stop_and_unlock(sim_devices: RigDevices) -> None:
    sim, robot, clock = sim_devices.stand_in, sim_devices.robot, sim_devices.clock
    assert sim is not None
    sim.inject_fault(Fault(device="robot", kind="drop_rtde", duration_s=0.5))
    with pytest.raises(DeviceTimeoutError, match="stalled"):
        robot.tcp_pose()
    clock.sleep(0.5)
    robot.tcp_pose()
    sim.inject_fault(Fault(device="robot", kind="protective_stop"))
    with pytest.raises(DeviceFaultError, match="protective stop"):
        robot.move_linear(HOME, speed_m_s=0.05, accel_m_s2=0.5)
    stopped_at = clock.now()
    robot.unlock_protective_stop()
    # The controller refuses an unlock for 5 s after the stop; the driver waits that out.
    assert clock.now() - stopped_at >= 5.0 - 1e-9
    robot.move_linear(HOME, speed_m_s=0.05, accel_m_s2=0.5)


def test_pressing_past_the_controller_limit_is_a_protective_stop(sim_devices: RigDevices) -> None:
    robot = sim_devices.robot
    robot.move_linear(ABOVE_BLOCK, speed_m_s=0.05, accel_m_s2=0.5)
    deep = ABOVE_BLOCK.copy()
    deep[2] = 0.090
    with pytest.raises(DeviceFaultError, match="contact force"):
        robot.move_linear(deep, speed_m_s=0.002, accel_m_s2=0.5)
    state = sim_devices.stand_in.state()  # type: ignore[union-attr]
    # The world's protective-stop threshold is 5 N; the arm freezes where it is first passed.
    assert state.protective_stopped and 5.0 <= state.probe_force_n < 5.01


def test_a_silent_client_mid_motion_is_stopped_by_the_watchdog(sim_devices: RigDevices) -> None:
    robot, clock = sim_devices.robot, sim_devices.clock
    robot.set_watchdog(1.0)
    robot.speed_linear(np.array([0.0, 0.0, -0.005, 0, 0, 0]), accel_m_s2=0.5)
    # At rest the keep-alive feeds the watchdog; streaming, only commands do, and none come.
    clock.sleep(0.9)
    assert not robot.is_protective_stopped()
    clock.sleep(0.2)
    state = sim_devices.stand_in.state()  # type: ignore[union-attr]
    assert state.protective_stopped and "watchdog" in (state.protective_stop_reason or "")
    moved_until = state.robot_pose[2]
    clock.sleep(1.0)
    assert sim_devices.stand_in.state().robot_pose[2] == moved_until  # type: ignore[union-attr]


def test_an_idle_armed_robot_is_kept_alive(sim_devices: RigDevices) -> None:
    robot, clock = sim_devices.robot, sim_devices.clock
    robot.set_watchdog(1.0)
    clock.sleep(5.0)
    assert not robot.is_protective_stopped()


def test_hexapod_errors_are_gcs_errors_at_the_next_call(sim_devices: RigDevices) -> None:
    sim, hexapod = sim_devices.stand_in, sim_devices.hexapod
    assert sim is not None
    with pytest.raises(GCSError) as unreferenced:
        hexapod.move_absolute({"Z": -1.0})
    assert unreferenced.value.code == 5
    hexapod.reference()
    sim.inject_fault(Fault(device="hexapod", kind="error", code=7))
    with pytest.raises(GCSError) as injected:
        hexapod.position()
    assert injected.value.code == 7 and injected.value.device == "hexapod"
    sim.inject_fault(Fault(device="hexapod", kind="stall", axis="Z"))
    hexapod.move_absolute({"Z": -1.0})
    with pytest.raises(DeviceTimeoutError, match="Z not on target"):
        hexapod.wait_on_target(timeout_s=5.0)


def test_scanner_faults_and_link_cuts(sim_devices: RigDevices) -> None:
    sim, scanner = sim_devices.stand_in, sim_devices.scanner
    assert sim is not None
    scanner.configure(SMALL)
    sim.inject_fault(Fault(device="scanner", kind="fault", message="HV supply tripped"))
    with pytest.raises(ScannerRefusedError, match="HV supply tripped") as refused:
        scanner.fire(push=False)
    assert not refused.value.transient
    assert scanner.read_state().state == "fault"
    scanner.configure(SMALL)
    sim.inject_fault(Fault(device="scanner", kind="drop"))
    with pytest.raises(DeviceConnectionError):
        scanner.fire(push=False)
    assert scanner.fire(push=False).iq.shape == (5, 16, 24)
    # A push needs acoustic contact: the probe is parked in the air.
    with pytest.raises(ScannerRefusedError, match="NO_CONTACT"):
        scanner.fire(push=True)


def test_the_operator_stand_in_places_cylinders(sim_devices: RigDevices) -> None:
    sim, hexapod, sensor = sim_devices.stand_in, sim_devices.hexapod, sim_devices.indenter_ft
    assert sim is not None
    hexapod.reference()
    sensor.bias()
    hexapod.move_absolute({"Z": -4.0})
    hexapod.wait_on_target(timeout_s=30)
    assert abs(sensor.read().force_n[2]) < 0.02
    sim.place_cylinder(Cylinder(batch_id="T-10", concentration_pct=10.0, index=0))
    assert sim.state().cylinder is not None and sensor.read().force_n[2] > 0.1
    sim.remove_cylinder()
    assert sim.state().cylinder is None


def test_sim_clock_moves_only_when_someone_waits() -> None:
    clock = SimClock()
    assert clock.now() == 0.0
    seen: list[float] = []
    clock.listen(seen.append)
    clock.sleep(0.12)
    assert clock.now() == pytest.approx(0.12) and len(seen) == 3 and seen[-1] == clock.now()
    deadline = clock.deadline(1.0)
    clock.sleep(0.99)
    assert not deadline.expired()
    clock.sleep(0.02)
    assert deadline.expired()
