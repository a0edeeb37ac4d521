"""The PI hexapod driver and ``pipython`` against the twin's GCS server, over TCP and a pty.

The server runs in a thread of the test process (``pipython`` is pure Python). Client and twin
share the virtual clock speed, so durations measured by the client are virtual seconds of the
twin; each check allows for the link's round trips, never for tuned physics.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from device_contract import check_hexapod
from pipython import GCSError as PIGCSError
from pipython.pidevice.gcscommands import GCSCommands
from pipython.pidevice.gcsmessages import GCSMessages
from pipython.pidevice.interfaces.pisocket import PISocket

from shearlab.devices.clock import Clock
from shearlab.devices.errors import DeviceConnectionError, DeviceTimeoutError, SafetyLimitError
from shearlab.devices.hexapod import GCSError, PIHexapod
from shearlab.devices.twin.gcs_server import GCSServer
from shearlab.devices.twin.hexapod_model import AXES, HexapodModel
from shearlab.protocols.rig import HexapodLimits

pytestmark = pytest.mark.timeout(30)

SPEED = 10.0
REFERENCE_S = 0.5
LIMITS = HexapodLimits(max_travel_mm=20.0, max_velocity_mm_s=5.0)


@dataclass
class Rig:
    server: GCSServer
    model: HexapodModel
    clock: Clock
    transport: str

    def connect(self, limits: HexapodLimits = LIMITS) -> PIHexapod:
        if self.transport == "tcp":
            return PIHexapod.tcp(self.server.host, self.server.port, limits=limits, clock=self.clock)
        return PIHexapod.serial(self.server.device_path, 115200, limits=limits, clock=self.clock)

    def sent_since(self, mark: int) -> list[str]:
        return list(self.server.transcript)[mark:]


@pytest.fixture(params=["tcp", "pty"])
def rig(request: pytest.FixtureRequest, loopback_host: Callable[[], str]) -> Iterator[Rig]:
    model = HexapodModel(Clock(speed=SPEED), reference_duration_s=REFERENCE_S)
    server = GCSServer.tcp(loopback_host(), 0, model) if request.param == "tcp" else GCSServer.pty(model)
    server.start()
    yield Rig(server, model, Clock(speed=SPEED), request.param)
    server.close()


@pytest.fixture
def hexapod(rig: Rig) -> Iterator[PIHexapod]:
    with rig.connect() as device:
        yield device


@pytest.fixture
def ready(hexapod: PIHexapod) -> PIHexapod:
    hexapod.reference()
    return hexapod


# -- connection -------------------------------------------------------------------------------
def test_connect_handshake_is_what_pipython_sends(rig: Rig, hexapod: PIHexapod) -> None:
    # pipython checks the GCS version, then the driver asks who it is and which axes exist.
    assert list(rig.server.transcript)[:4] == ["CSV?", "ERR?", "*IDN?", "ERR?"]
    assert "SAI? ALL" in rig.server.transcript
    assert "C-887" in hexapod.identity
    status = hexapod.status()
    assert status.state == "not referenced"
    assert "C-887" in status.identity
    assert status.latency_ms > 0


def test_driver_keeps_the_hexapod_contract(hexapod: PIHexapod) -> None:
    check_hexapod(hexapod)


def test_unreachable_controller_raises_connection_error_naming_the_address(loopback_host: Callable[[], str]) -> None:
    nobody = loopback_host()
    with pytest.raises(DeviceConnectionError, match=f"{nobody}:50000") as info:
        PIHexapod.tcp(nobody, limits=LIMITS, clock=Clock(speed=SPEED))
    assert info.value.device == "hexapod"
    with pytest.raises(DeviceConnectionError, match="/dev/no-such-hexapod"):
        PIHexapod.serial("/dev/no-such-hexapod", 115200, limits=LIMITS, clock=Clock(speed=SPEED))


def test_default_port_is_50000(loopback_host: Callable[[], str]) -> None:
    host = loopback_host()
    model = HexapodModel(Clock(speed=SPEED), reference_duration_s=REFERENCE_S)
    with GCSServer.tcp(host, 50000, model) as server:
        server.start()
        with PIHexapod.tcp(host, limits=LIMITS, clock=Clock(speed=SPEED)) as device:
            assert device.position() == {axis: 0.0 for axis in AXES}


def test_reference_is_idempotent(rig: Rig, hexapod: PIHexapod) -> None:
    hexapod.reference()
    assert hexapod.is_referenced()
    assert rig.server.transcript.count("FRF") == 1
    mark = len(rig.server.transcript)
    hexapod.reference()
    assert "FRF" not in rig.sent_since(mark)
    assert hexapod.status().state == "ready"


# -- motion -----------------------------------------------------------------------------------
def test_move_reaches_target_at_the_commanded_velocity(rig: Rig, ready: PIHexapod) -> None:
    clock, velocity, distance = rig.clock, 2.0, -2.0
    ready.set_velocity(velocity)
    t_sent = clock.now()
    ready.move_absolute({"Z": distance})
    t_started = clock.now()  # the twin's move began between t_sent and t_started
    clock.sleep(0.4)
    t_before = clock.now()
    z = ready.position()["Z"]
    t_after = clock.now()
    # Rigorous bounds from the timestamps: the twin read Z between t_before and t_after.
    assert velocity * (t_before - t_started) - 1e-6 <= -z <= velocity * (t_after - t_sent) + 1e-6
    ready.wait_on_target(timeout_s=10.0)
    elapsed = clock.now() - t_sent
    expected = abs(distance) / velocity
    # It cannot arrive early; late by at most a poll and a few round trips (0.5 s is 50 ms wall).
    assert expected - 1e-6 <= elapsed <= expected + 0.5
    assert ready.position()["Z"] == pytest.approx(distance, abs=1e-6)
    assert not ready.is_moving()
    assert f"MOV Z {distance:g}" in rig.server.transcript


def test_relative_move_adds_to_the_target(rig: Rig, ready: PIHexapod) -> None:
    ready.set_velocity(LIMITS.max_velocity_mm_s)
    ready.move_absolute({"X": 1.0})
    ready.move_relative({"X": 0.5, "Y": -0.25})
    ready.wait_on_target(timeout_s=10.0)
    position = ready.position()
    assert position["X"] == pytest.approx(1.5, abs=1e-6)
    assert position["Y"] == pytest.approx(-0.25, abs=1e-6)


def test_halt_mid_move_stops_the_platform(rig: Rig, ready: PIHexapod) -> None:
    ready.set_velocity(0.5)
    ready.move_absolute({"Z": -5.0})
    rig.clock.sleep(1.0)
    assert ready.is_moving()
    ready.halt()  # error 10 is expected by halt() and does not raise
    stopped = ready.position()["Z"]
    assert -5.0 < stopped < 0.0
    rig.clock.sleep(1.0)
    assert ready.position()["Z"] == stopped
    assert not ready.is_moving()
    ready.wait_on_target(timeout_s=1.0)
    assert list(rig.server.transcript)[-12:].count("HLT") == 1


def test_halt_is_safe_in_any_state(hexapod: PIHexapod) -> None:
    hexapod.halt()
    hexapod.halt()
    assert not hexapod.is_moving()


def test_raw_pipython_sees_error_10_after_hlt(loopback_host: Callable[[], str]) -> None:
    host = loopback_host()
    model = HexapodModel(Clock(speed=SPEED), reference_duration_s=0.0)
    with GCSServer.tcp(host, 0, model) as server:
        server.start()
        # The context manager drops pipython's class-wide connection callback on exit.
        with GCSCommands(GCSMessages(PISocket(server.host, server.port))) as gcs:
            gcs.SVO(list(AXES), [True] * len(AXES))
            gcs.FRF()
            gcs.MOV("Z", -3.0)
            with pytest.raises(PIGCSError) as info:
                gcs.HLT()
            assert info.value.val == 10
            assert gcs.qERR() == 0
            gcs.messages.interface.close()


def test_stalled_axis_times_out_naming_the_axis(rig: Rig, ready: PIHexapod) -> None:
    rig.model.stall_axis("Z")
    ready.set_velocity(LIMITS.max_velocity_mm_s)
    ready.move_absolute({"X": 0.5, "Z": 0.5})
    with pytest.raises(DeviceTimeoutError, match=r"axes Z not on target") as info:
        ready.wait_on_target(timeout_s=2.0)
    assert "X" not in info.value.message.split("(")[0]
    assert info.value.transient


def test_motion_guard_stop_surfaces_as_error_10(rig: Rig, ready: PIHexapod) -> None:
    rig.model.set_motion_guard(lambda position: position["Z"] > -0.5)
    ready.set_velocity(LIMITS.max_velocity_mm_s)
    ready.move_absolute({"Z": -2.0})
    with pytest.raises(GCSError) as info:
        ready.wait_on_target(timeout_s=5.0)
    assert info.value.code == 10
    assert ready.position()["Z"] == pytest.approx(-0.5, abs=1e-5)


# -- errors -----------------------------------------------------------------------------------
def test_move_before_reference_is_gcs_error_5(hexapod: PIHexapod) -> None:
    with pytest.raises(GCSError) as info:
        hexapod.move_absolute({"Z": 1.0})
    assert info.value.code == 5
    assert "unreferenced" in info.value.meaning
    assert info.value.device == "hexapod"


def test_target_beyond_the_controller_limit_is_gcs_error_7(rig: Rig) -> None:
    # The rig limits only the linear travel; past the controller's +/-10 deg of tilt, the controller's
    # refusal must surface typed.
    with rig.connect(HexapodLimits(max_travel_mm=50.0, max_velocity_mm_s=5.0)) as device:
        device.reference()
        with pytest.raises(GCSError) as info:
            device.move_absolute({"U": 15.0})
    assert info.value.code == 7
    assert info.value.meaning == "Position out of limits"


def test_injected_error_surfaces_typed_once(rig: Rig, ready: PIHexapod) -> None:
    rig.model.inject_error(17)
    with pytest.raises(GCSError) as info:
        ready.position()
    assert (info.value.code, info.value.meaning) == (17, "Parameter out of range")
    assert "17" in str(info.value)
    ready.position()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda h: h.move_absolute({"Q": 1.0}), ValueError),
        (lambda h: h.move_absolute({}), ValueError),
        (lambda h: h.move_absolute({"Z": math.nan}), ValueError),
        (lambda h: h.move_absolute({"Z": LIMITS.max_travel_mm + 0.1}), SafetyLimitError),
        (lambda h: h.move_relative({"Z": math.inf}), ValueError),
        (lambda h: h.set_velocity(LIMITS.max_velocity_mm_s * 2), SafetyLimitError),
        (lambda h: h.set_velocity(-1.0), ValueError),
    ],
)
def test_invalid_arguments_send_nothing(rig: Rig, hexapod: PIHexapod, call, error) -> None:
    mark = len(rig.server.transcript)
    with pytest.raises(error):
        call(hexapod)
    assert rig.sent_since(mark) == []


def test_relative_move_beyond_travel_sends_no_motion(rig: Rig, ready: PIHexapod) -> None:
    ready.move_absolute({"Z": 15.0})
    mark = len(rig.server.transcript)
    with pytest.raises(SafetyLimitError, match="Z 25 mm"):
        ready.move_relative({"Z": 10.0})
    assert rig.sent_since(mark) == ["MOV? Z", "ERR?"]


def test_unplugged_controller_times_out_then_recovers(rig: Rig, hexapod: PIHexapod) -> None:
    rig.server.unplug()
    with pytest.raises(DeviceTimeoutError, match="POS?"):
        hexapod.position()
    rig.server.replug()
    assert hexapod.position()["Z"] == 0.0


def test_closed_server_is_a_connection_error(rig: Rig, hexapod: PIHexapod) -> None:
    rig.server.close()
    # Seen at once, not after the reply timeout: an empty read on TCP, EIO on the pty.
    with pytest.raises(DeviceConnectionError, match="POS?"):
        hexapod.position()


def test_two_clients_share_one_controller(rig: Rig, ready: PIHexapod) -> None:
    with rig.connect() as second:
        ready.set_velocity(LIMITS.max_velocity_mm_s)
        ready.move_absolute({"Y": 1.0})
        second.wait_on_target(timeout_s=5.0)
        assert second.position()["Y"] == pytest.approx(1.0, abs=1e-6)


# -- the wire, without pipython ---------------------------------------------------------------
def _exchange(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` and read one GCS reply: up to an LF not preceded by a space."""
    sock.sendall(data)
    reply = b""
    while not (reply.endswith(b"\n") and not reply.endswith(b" \n")):
        chunk = sock.recv(4096)
        assert chunk, "server closed the link"
        reply += chunk
    return reply


def test_wire_format_of_replies(loopback_host: Callable[[], str]) -> None:
    host = loopback_host()
    model = HexapodModel(Clock(speed=SPEED), reference_duration_s=0.0)
    with GCSServer.tcp(host, 0, model) as server:
        server.start()
        with socket.create_connection((server.host, server.port), timeout=2.0) as sock:
            # Without this, Nagle's algorithm holds a short command for the peer's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            assert _exchange(sock, b"CSV?\n") == b"2.0\n"
            assert _exchange(sock, b"POS? Z\n") == b"Z=0.000000\n"
            assert _exchange(sock, b"SAI? ALL\n") == b"X \nY \nZ \nU \nV \nW\n"
            assert _exchange(sock, b"\x07") == b"\xb1\n"
            assert _exchange(sock, b"\x05") == b"0\n"
            # Set commands answer nothing: the next reply is ERR?'s.
            sock.sendall(b"SVO X 1 Y 1 Z 1 U 1 V 1 W 1\nFRF\n")
            assert _exchange(sock, b"ERR?\n") == b"0\n"
            assert _exchange(sock, b"FRF? X Y\n") == b"X=1 \nY=1\n"
            # 1 mm at 0.1 mm/s: 10 s virtual, 1 s wall, long enough to catch it moving.
            sock.sendall(b"VLS 0.1\nMOV Z -1\n")
            assert _exchange(sock, b"\x05") == b"4\n"
            assert _exchange(sock, b"VLS?\n") == b"0.100000\n"
            assert _exchange(sock, b"TMX? U\n") == b"U=10.000000\n"
            sock.sendall(b"\x18")
            assert _exchange(sock, b"ERR?\n") == b"10\n"
            sock.sendall(b"FOO 1\n")
            assert _exchange(sock, b"ERR?\n") == b"2\n"
            sock.sendall(b"MOV Q 1\n")
            assert _exchange(sock, b"ERR?\n") == b"15\n"
            sock.sendall(b"MOV Z one\n")
            assert _exchange(sock, b"ERR?\n") == b"1\n"
            assert _exchange(sock, b"POS? Q\n") == b"\n"
            assert _exchange(sock, b"ERR?\n") == b"15\n"
            assert _exchange(sock, b"HLP?\n").startswith(b"The following commands are valid: \n")
    assert list(server.transcript)[:5] == ["CSV?", "POS? Z", "SAI? ALL", "#7", "#5"]
    assert "#24" in server.transcript


def test_server_closes_cleanly_with_clients_connected(loopback_host: Callable[[], str]) -> None:
    host = loopback_host()
    model = HexapodModel(Clock(speed=SPEED))
    server = GCSServer.tcp(host, 0, model)
    server.start()
    sock = socket.create_connection((server.host, server.port), timeout=2.0)
    server.close()
    server.close()
    sock.settimeout(2.0)
    assert sock.recv(16) == b""
    sock.close()
    assert not any(t.name.startswith("gcs-server") and t.is_alive() for t in threading.enumerate())
