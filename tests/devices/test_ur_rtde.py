"""The UR3 driver and controller twin through the real ``ur_rtde`` library, over TCP on loopback.

The twin runs in its own process (the ``ur_rtde`` constructors hold the GIL, so a twin in the test
process would deadlock); it serves a flat elastic floor at z = 0.10 m (2000 N/m) and latches a
protective stop at 5 N. Its control endpoint reports the twin's own view (pose, force, commands it
executed) and injects faults. Raw-socket tests of the wire format run twins in this process.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from device_contract import check_robot

from shearlab.devices.clock import Clock
from shearlab.devices.endpoints import TcpAddress
from shearlab.devices.errors import DeviceConnectionError, DeviceFaultError, DeviceTimeoutError, SafetyLimitError
from shearlab.devices.robot import URRobot, ur_rtde
from shearlab.devices.stand_in import Fault
from shearlab.devices.twin import rtde_wire as wire
from shearlab.devices.twin.robot_model import RobotModel
from shearlab.devices.twin.ur_controller import URControllerTwin, flat_floor
from shearlab.devices.twin_client import TwinControl
from shearlab.protocols.rig import RobotLimits

SPEED = 5.0
FLOOR_Z_M = 0.10
STIFFNESS_N_PER_M = 2000.0
LIMIT_N = 5.0
DOWN = (np.pi, 0.0, 0.0)
HOME = np.array([0.0, 0.0, 0.30, *DOWN])

pytestmark = pytest.mark.timeout(60)


def _launch(host: str, speed: float = SPEED) -> tuple[subprocess.Popen[str], TwinControl]:
    """Start a UR twin process on ``host`` and connect to its control endpoint."""
    cmd = [
        sys.executable, "-m", "shearlab.devices.twin", "ur-floor", "--host", host, "--speed", str(speed),
        "--floor-z-m", str(FLOOR_Z_M), "--stiffness-n-per-m", str(STIFFNESS_N_PER_M),
        "--force-limit-n", str(LIMIT_N), "--parent-pid", str(os.getpid()),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    if not line or not line[0].strip():
        proc.kill()
        pytest.fail(f"UR twin did not start: {proc.communicate(timeout=10)[1][-2000:]}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # type: ignore[union-attr]
    return proc, TwinControl(TcpAddress(host=host, port=json.loads(line[0])["control_port"]))


@pytest.fixture(scope="module")
def host(loopback_host: Callable[[], str]) -> str:
    """The address of the module's UR twin."""
    return loopback_host()


@pytest.fixture(scope="module")
def twin(host: str) -> Iterator[TwinControl]:
    proc, control = _launch(host)
    yield control
    control.close()
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def robot(twin: TwinControl, host: str) -> Iterator[URRobot]:
    arm = URRobot(host, limits=RobotLimits(), clock=Clock(speed=SPEED), name="robot")
    arm.connect()
    yield arm
    arm.close()


def _park(robot: URRobot) -> URRobot:
    """The connected robot, unlocked and parked at HOME."""
    if robot.is_protective_stopped():
        robot.unlock_protective_stop()
    robot.stop()
    if np.abs(robot.tcp_pose() - HOME).max() > 1e-9:
        robot.move_linear(HOME, speed_m_s=0.1, accel_m_s2=0.5)
    return robot


@pytest.fixture
def home(robot: URRobot) -> URRobot:
    """The connected robot, unlocked and parked at HOME before the test."""
    return _park(robot)


@pytest.mark.slow
def test_driver_keeps_the_robot_contract_and_reports_status(home: URRobot) -> None:
    check_robot(home, HOME)
    status = home.status()
    assert status.name == "robot"
    assert "UR3" in status.identity and "3.15" in status.identity
    assert status.state == "idle"
    # One state packet at 125 Hz arrives within 8 ms plus scheduling delay.
    assert 0 < status.latency_ms < 500


@pytest.mark.slow
def test_move_linear_reaches_the_commanded_pose_with_a_trapezoidal_profile(home: URRobot) -> None:
    target = np.array([0.10, 0.0, 0.30, *DOWN])
    samples: list[tuple[float, float]] = []
    mover = threading.Thread(target=home.move_linear, args=(target,), kwargs={"speed_m_s": 0.1, "accel_m_s2": 0.5})
    mover.start()
    while mover.is_alive():
        samples.append((home._receive.getTimestamp(), float(home.tcp_speed()[0])))
        time.sleep(0.002)
    mover.join()
    np.testing.assert_allclose(home.tcp_pose(), target, atol=1e-9)
    moving = [(t, v) for t, v in samples if v > 1e-6]
    # Peak is the commanded 0.1 m/s; 0.1 m at 0.1 m/s with 0.5 m/s^2 ramps takes 1.2 s virtual.
    # Samples come every 8 ms wall = 0.04 s virtual, so the observed span is short by up to two.
    assert max(v for _, v in moving) == pytest.approx(0.1, abs=1e-9)
    assert 1.2 - 0.1 < moving[-1][0] - moving[0][0] <= 1.2 + 1e-6
    accelerating = [v for t, v in moving if t - moving[0][0] < 0.15]
    assert accelerating == sorted(accelerating)


@pytest.mark.slow
def test_speed_linear_moves_until_stop(home: URRobot, twin: TwinControl) -> None:
    start = home.tcp_pose()
    home.speed_linear(np.array([0.0, 0.02, 0.0, 0.0, 0.0, 0.0]), accel_m_s2=0.5)
    home.clock.sleep(0.5)
    assert home.tcp_speed()[1] == pytest.approx(0.02, abs=1e-9)
    home.stop()
    home.wait_until_still(timeout_s=2.0)
    stopped_at = home.tcp_pose()
    # Ramp 0.04 s, then at least 0.4 s at 0.02 m/s before the stop: > 8 mm travelled, only along y.
    assert stopped_at[1] - start[1] > 0.008
    np.testing.assert_allclose(stopped_at[[0, 2]], start[[0, 2]], atol=1e-12)
    home.clock.sleep(0.2)
    np.testing.assert_array_equal(home.tcp_pose(), stopped_at)
    assert twin.call("state")["pose"][1] == pytest.approx(stopped_at[1], abs=1e-12)


@pytest.mark.slow
def test_watchdog_kicked_keeps_running_and_a_missed_kick_gives_a_protective_stop(home: URRobot) -> None:
    # 5 Hz: the client must kick within 200 ms of wall time (a liveness check runs on the wall clock
    # whatever the twin's speed); kicks every 10 ms of wall time keep it alive on a loaded CI box.
    home.set_watchdog(5.0)
    home.speed_linear(np.array([0.01, 0.0, 0.0, 0.0, 0.0, 0.0]), accel_m_s2=0.5)
    deadline = home.clock.deadline(2.0)
    while not deadline.expired():
        home.kick_watchdog()
        home.clock.sleep(0.05)
    assert not home.is_protective_stopped()
    home.clock.sleep(2.5)
    assert home.is_protective_stopped()
    assert home._receive.isProtectiveStopped()
    with pytest.raises(DeviceFaultError, match="protective stop"):
        home.move_linear(HOME, speed_m_s=0.1, accel_m_s2=0.5)
    home.unlock_protective_stop()
    assert not home.is_protective_stopped()


@pytest.mark.slow
def test_driving_into_the_floor_stops_where_the_force_reaches_the_limit(home: URRobot, twin: TwinControl, host: str) -> None:
    home.move_linear(np.array([0.0, 0.0, 0.11, *DOWN]), speed_m_s=0.1, accel_m_s2=0.5)
    with pytest.raises(DeviceFaultError, match="protective stop") as info:
        home.move_linear(np.array([0.0, 0.0, 0.05, *DOWN]), speed_m_s=0.02, accel_m_s2=0.5)
    assert host in str(info.value) and info.value.device == "robot"
    state = twin.call("state")
    assert state["protective_stopped"] and "contact force" in state["reason"]
    # 5 N on 2000 N/m is 2.5 mm below the floor; the twin freezes within 1 um of it.
    assert home.tcp_pose()[2] == pytest.approx(FLOOR_Z_M - LIMIT_N / STIFFNESS_N_PER_M, abs=1e-6)
    assert LIMIT_N < state["force_n"] < LIMIT_N + 0.01
    home.unlock_protective_stop()
    home.move_linear(np.array([0.0, 0.0, 0.12, *DOWN]), speed_m_s=0.1, accel_m_s2=0.5)
    assert not home.is_protective_stopped()


@pytest.mark.slow
def test_invalid_arguments_are_refused_before_any_io(home: URRobot, twin: TwinControl) -> None:
    before = twin.call("state")["commands"]
    with pytest.raises(SafetyLimitError, match="workspace box"):
        home.move_linear(np.array([0.0, 0.0, -0.01, *DOWN]), speed_m_s=0.05, accel_m_s2=0.5)
    with pytest.raises(SafetyLimitError, match="max_speed_m_s"):
        home.move_linear(HOME, speed_m_s=0.5, accel_m_s2=0.5)
    with pytest.raises(SafetyLimitError, match="max_accel_m_s2"):
        home.speed_linear(np.array([0.01, 0, 0, 0, 0, 0]), accel_m_s2=5.0)
    with pytest.raises(SafetyLimitError, match="linear speed"):
        home.speed_linear(np.array([0.2, 0, 0, 0, 0, 0]), accel_m_s2=0.5)
    with pytest.raises(ValueError, match="finite"):
        home.move_linear(np.array([np.nan, 0, 0.2, *DOWN]), speed_m_s=0.05, accel_m_s2=0.5)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        home.move_linear(np.zeros(3), speed_m_s=0.05, accel_m_s2=0.5)
    with pytest.raises(ValueError, match="watchdog"):
        home.set_watchdog(0.0)
    assert twin.call("state")["commands"] == before


def test_validation_needs_no_connection(loopback_host: Callable[[], str]) -> None:
    offline = URRobot(loopback_host(), limits=RobotLimits(), clock=Clock(), name="arm")
    with pytest.raises(SafetyLimitError, match="arm: .*workspace"):
        offline.move_linear(np.array([1.0, 0.0, 0.2, *DOWN]), speed_m_s=0.05, accel_m_s2=0.5)


def test_unreachable_host_fails_fast_naming_the_address(loopback_host: Callable[[], str]) -> None:
    nobody = loopback_host()  # no twin listens here
    offline = URRobot(nobody, limits=RobotLimits(), clock=Clock(), name="robot")
    start = time.monotonic()
    with pytest.raises(DeviceConnectionError, match=nobody) as info:
        offline.connect()
    assert time.monotonic() - start < 2.0
    assert info.value.device == "robot"
    with pytest.raises(DeviceConnectionError, match="connect"):
        offline.tcp_pose()


@pytest.mark.slow
def test_dropped_rtde_stream_gives_a_typed_error_and_recovers(home: URRobot, twin: TwinControl, host: str) -> None:
    home.tcp_pose()
    drop_wall_s = 1.2
    twin.inject_fault(Fault(device="robot", kind="drop_rtde", duration_s=drop_wall_s * SPEED))
    injected = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="stalled") as info:
        while time.monotonic() - injected < 3 * drop_wall_s:
            home.tcp_pose()
            time.sleep(0.02)
    assert host in str(info.value)
    time.sleep(max(0.0, drop_wall_s + 0.2 - (time.monotonic() - injected)))
    home.tcp_pose()
    home.move_linear(np.array([0.0, 0.01, 0.30, *DOWN]), speed_m_s=0.1, accel_m_s2=0.5)


@pytest.mark.slow
def test_a_vanished_controller_gives_connection_errors_without_hanging(loopback_host: Callable[[], str]) -> None:
    host = loopback_host()
    proc, control = _launch(host)
    control.close()
    arm = URRobot(host, limits=RobotLimits(), clock=Clock(speed=SPEED), name="robot")
    arm.connect()
    try:
        proc.kill()
        proc.wait(10)
        time.sleep(0.3)
        start = time.monotonic()
        with pytest.raises(DeviceConnectionError, match=host):
            arm.move_linear(HOME, speed_m_s=0.1, accel_m_s2=0.5)
        with pytest.raises(DeviceConnectionError, match="lost"):
            arm.tcp_pose()
        with pytest.raises(DeviceConnectionError):
            arm.kick_watchdog()
        assert time.monotonic() - start < 1.0
    finally:
        arm.close()


# -- watched (asynchronous) moves under a watchdog, on a fast twin ---------------------------------

FAST_SPEED = 50.0
# 5 Hz: the client must show signs of life every 0.2 s of wall time, 10 s virtual at FAST_SPEED.
WATCHDOG_HZ = 5.0
# 0.2 m at 0.01 m/s with 0.5 m/s^2 ramps: 0.2 / 0.01 + 0.01 / 0.5 = 20.02 s virtual = 0.40 s wall,
# twice the watchdog period; a blocking moveL sends no RTDE input for all of it.
FAR = np.array([0.20, 0.0, 0.30, *DOWN])
SLOW_M_S = 0.01
FAR_DURATION_S = 0.20 / SLOW_M_S + SLOW_M_S / 0.5


@pytest.fixture(scope="module")
def fast(loopback_host: Callable[[], str]) -> Iterator[tuple[URRobot, TwinControl]]:
    host = loopback_host()
    proc, control = _launch(host, FAST_SPEED)
    arm = URRobot(host, limits=RobotLimits(), clock=Clock(speed=FAST_SPEED), name="robot")
    try:
        arm.connect()
        yield arm, control
    finally:
        arm.close()
        control.close()
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_a_watched_move_outlasting_the_watchdog_period_reaches_its_target(
    fast: tuple[URRobot, TwinControl],
) -> None:
    arm, twin = fast
    _park(arm)
    arm.set_watchdog(WATCHDOG_HZ)
    # What a blocking moveL does: the watchdog starves and stops the arm mid-move. The driver's
    # keep-alive (which kicks an idle client's watchdog) must stay quiet, as it does while the arm
    # streams velocity commands: a kick would also collide with the raw call's handshake.
    arm._at_rest = False
    assert not arm._control.moveL([float(v) for v in FAR], SLOW_M_S, 0.5, False)
    state = twin.call("state")
    assert state["protective_stopped"] and "watchdog" in state["reason"]
    assert 0.0 < state["pose"][0] < FAR[0]
    _park(arm)

    arm.set_watchdog(WATCHDOG_HZ)
    start_s, start_wall = arm.clock.now(), time.monotonic()
    arm.move_linear(FAR, speed_m_s=SLOW_M_S, accel_m_s2=0.5)
    assert time.monotonic() - start_wall > 1.5 / WATCHDOG_HZ
    # Both clocks run at the same rate: the call cannot return before the profile has ended.
    assert arm.clock.now() - start_s >= FAR_DURATION_S - 1e-6
    assert not arm.is_protective_stopped()
    np.testing.assert_allclose(arm.tcp_pose(), FAR, atol=1e-9)
    np.testing.assert_array_equal(arm.tcp_speed(), np.zeros(6))
    # The watchdog stayed armed through the move: once the kicks stop (keep-alive quiet, as while
    # streaming velocity commands), it trips.
    arm._at_rest = False
    arm.clock.sleep(2.0 / WATCHDOG_HZ * FAST_SPEED)
    assert arm.is_protective_stopped()
    assert "watchdog" in twin.call("state")["reason"]
    arm.unlock_protective_stop()


@pytest.mark.slow
def test_a_protective_stop_during_a_watched_move_raises_a_fault(fast: tuple[URRobot, TwinControl]) -> None:
    arm, twin = fast
    _park(arm)
    arm.set_watchdog(WATCHDOG_HZ)
    raised: list[BaseException] = []

    def move() -> None:
        try:
            arm.move_linear(FAR, speed_m_s=SLOW_M_S, accel_m_s2=0.5)
        except BaseException as exc:  # handed to the test thread
            raised.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    deadline = time.monotonic() + 5.0
    while twin.call("state")["pose"][0] < 0.02 and time.monotonic() < deadline:
        time.sleep(0.005)
    twin.inject_fault(Fault(device="robot", kind="protective_stop"))
    mover.join(10)
    assert not mover.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], DeviceFaultError), raised
    assert "protective stop" in str(raised[0]) and arm.host in str(raised[0])
    state = twin.call("state")
    assert state["reason"] == "injected"
    # Injected once the arm had covered 2 cm (2 s virtual, 40 ms wall): it froze short of the target.
    assert 0.02 <= state["pose"][0] < FAR[0] - 0.01
    arm.unlock_protective_stop()


@pytest.mark.slow
def test_a_watched_move_overrunning_its_time_is_stopped_with_a_timeout(
    fast: tuple[URRobot, TwinControl], monkeypatch: pytest.MonkeyPatch
) -> None:
    arm, twin = fast
    _park(arm)
    # Allow a quarter of the profile's 20 s and no slack: the move overruns after 5 s virtual.
    monkeypatch.setattr(ur_rtde, "_MOVE_TIME_FACTOR", 0.25)
    monkeypatch.setattr(ur_rtde, "_MOVE_TIME_SLACK_S", 0.0)
    arm.set_watchdog(WATCHDOG_HZ)
    with pytest.raises(DeviceTimeoutError, match="did not finish") as info:
        arm.move_linear(FAR, speed_m_s=SLOW_M_S, accel_m_s2=0.5)
    assert info.value.device == "robot"
    # The driver stopped the arm near the 5 s mark (5 cm), far from the target, and it stays there;
    # the client is alive and at rest, so its keep-alive holds the watchdog off.
    arm.clock.sleep(2.0 / WATCHDOG_HZ * FAST_SPEED)
    state = twin.call("state")
    assert 0.03 < state["pose"][0] < FAR[0] - 0.05
    np.testing.assert_array_equal(arm.tcp_speed(), np.zeros(6))
    assert not state["protective_stopped"]


@pytest.mark.slow
def test_async_progress_register_follows_a_move_and_an_async_stop(fast: tuple[URRobot, TwinControl]) -> None:
    arm, _ = fast
    control = _park(arm)._control
    idle = control.getAsyncOperationProgressEx()
    assert not idle.isAsyncOperationRunning() and control.getAsyncOperationProgress() < 0
    assert control.moveL([float(v) for v in FAR], SLOW_M_S, 0.5, True)
    running = control.getAsyncOperationProgressEx()
    # The handshake and the start of the operation arrive in the same state package.
    assert running.isAsyncOperationRunning() and running.progress() == 0
    assert running.operationId() != idle.operationId()
    time.sleep(0.05)
    control.stopL(0.5, True)
    deadline = time.monotonic() + 2.0
    while control.getAsyncOperationProgressEx().isAsyncOperationRunning() and time.monotonic() < deadline:
        time.sleep(0.005)
    stopped = control.getAsyncOperationProgressEx()
    assert not stopped.isAsyncOperationRunning()
    assert stopped.operationId() not in (idle.operationId(), running.operationId())  # the stop's own
    arm.wait_until_still(timeout_s=1.0)
    assert 0.0 < arm.tcp_pose()[0] < FAR[0]
    # An earlier asynchronous call leaves input_int_register_1 at 1; speedStop does not read it.
    arm.stop()
    assert not arm.is_protective_stopped()


# -- wire level, twins in this process ------------------------------------------------------------


def _rtde(sock: socket.socket, kind: int, payload: bytes = b"") -> tuple[int, bytes]:
    sock.sendall(wire.frame(kind, payload))
    reply = wire.recv_message(sock)
    assert reply is not None
    return reply


@pytest.fixture
def local_twins(loopback_host: Callable[[], str]) -> Iterator[list[tuple[URControllerTwin, RobotModel]]]:
    twins = []
    for x in (0.01, 0.02):
        host = loopback_host()
        clock = Clock(speed=10.0)
        model = RobotModel(
            clock,
            contact_force_n=flat_floor(FLOOR_Z_M, STIFFNESS_N_PER_M),
            initial_pose=np.array([x, 0.0, 0.30, *DOWN]),
        )
        server = URControllerTwin(host, model, clock)
        server.start()
        twins.append((server, model))
    yield twins
    for server, _ in twins:
        server.close()


def test_recipes_are_numbered_from_one_and_decoded_by_name(
    local_twins: list[tuple[URControllerTwin, RobotModel]],
) -> None:
    for (server, _), x in zip(local_twins, (0.01, 0.02), strict=True):
        with socket.create_connection((server.host, 30004), timeout=5) as sock:
            assert _rtde(sock, wire.REQUEST_PROTOCOL_VERSION, struct.pack(">H", 2)) == (ord("V"), b"\x01")
            kind, body = _rtde(sock, wire.GET_URCONTROL_VERSION)
            assert struct.unpack(">IIII", body)[:2] == (3, 15)
            kind, body = _rtde(sock, wire.SETUP_OUTPUTS, struct.pack(">d", 100.0) + b"timestamp,no_such_variable")
            assert body == b"\x00DOUBLE,NOT_FOUND"
            names = b"timestamp,actual_TCP_pose,safety_status_bits,output_int_register_0"
            kind, body = _rtde(sock, wire.SETUP_OUTPUTS, struct.pack(">d", 100.0) + names)
            assert body == b"\x02DOUBLE,VECTOR6D,UINT32,INT32"
            kind, body = _rtde(sock, wire.SETUP_INPUTS, b"input_int_register_0,input_double_register_3,")
            assert body == b"\x01INT32,DOUBLE"
            assert _rtde(sock, wire.START) == (ord("S"), b"\x01")
            recipe = wire.Recipe(2, wire.split_names(names), ("DOUBLE", "VECTOR6D", "UINT32", "INT32"))
            kind, body = wire.recv_message(sock)  # type: ignore[misc]
            assert kind == wire.DATA_PACKAGE and body[0] == 2
            values = recipe.unpack(body[1:])
            assert values["actual_TCP_pose"][0] == pytest.approx(x)  # type: ignore[index]
            assert values["safety_status_bits"] == 1
            sock.sendall(wire.frame(wire.DATA_PACKAGE, bytes([1]) + struct.pack(">id", 0, 1.5)))
            assert _rtde_until(sock, wire.PAUSE) == b"\x01"


def _rtde_until(sock: socket.socket, kind: int) -> bytes:
    """Send ``kind`` and skip data packages still in flight until its reply."""
    sock.sendall(wire.frame(kind))
    while True:
        reply = wire.recv_message(sock)
        assert reply is not None
        if reply[0] == kind:
            return reply[1]


def test_repeated_connections_leave_no_threads_behind(
    local_twins: list[tuple[URControllerTwin, RobotModel]],
) -> None:
    server = local_twins[0][0]
    baseline = threading.active_count()
    for _ in range(15):
        with socket.create_connection((server.host, 30004), timeout=5) as sock:
            _rtde(sock, wire.SETUP_OUTPUTS, struct.pack(">d", 500.0) + b"timestamp")
            _rtde(sock, wire.START)
        with socket.create_connection((server.host, 29999), timeout=5) as sock:
            sock.recv(100)
        with socket.create_connection((server.host, 30003), timeout=5):
            pass
    deadline = time.monotonic() + 5
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= baseline
    with socket.create_connection((server.host, 29999), timeout=5) as sock:
        assert sock.recv(100).startswith(b"Connected: Universal Robots Dashboard Server")
        sock.sendall(b"PolyscopeVersion\n")
        assert b"3.15.7" in sock.recv(100)


def test_recipe_pack_round_trip_and_register_types() -> None:
    recipe = wire.Recipe(3, ("a", "b", "c"), ("INT32", "VECTOR3D", "UINT64"))
    packed = recipe.pack({"a": -7, "b": (1.0, 2.0, 3.0), "c": 2**40})
    assert packed[0] == 3
    assert recipe.unpack(packed[1:]) == {"a": -7, "b": (1.0, 2.0, 3.0), "c": 2**40}
    assert wire.output_type("output_double_register_47") == "DOUBLE"
    assert wire.output_type("output_int_register_48") == wire.NOT_FOUND
    assert wire.input_type("input_bit_register_64") == "BOOL"
    assert wire.input_type("input_bit_register_3") == wire.NOT_FOUND
    assert wire.input_type("output_int_register_0") == wire.NOT_FOUND
