"""The scanner bridge over real TCP: client driver against the twin's server, and the codec alone.

The acquisition here is a deterministic synthetic function: these tests check transport and protocol;
the image physics is tested with the world.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from device_contract import check_scanner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shearlab.devices.clock import Clock
from shearlab.devices.errors import DeviceConnectionError, DeviceProtocolError, DeviceTimeoutError
from shearlab.devices.interfaces import ScanResult
from shearlab.devices.scanner import ScannerBridgeClient, ScannerRefusedError
from shearlab.devices.scanner.bridge_wire import (
    MAGIC,
    MAX_PAYLOAD_BYTES,
    PREFIX,
    REQUEST_TYPES,
    BridgeProtocolError,
    ConfiguredReply,
    ConfigureRequest,
    ErrorCode,
    FireRequest,
    Frame,
    IdentifyRequest,
    IdentityReply,
    MessageType,
    ScanRefused,
    ScanReply,
    decode_frame,
    encode_frame,
    frame_buffers,
    recv_frame,
    send_frame,
)
from shearlab.devices.twin.scanner_model import TWIN_IDENTITY, DutyLimits, ScannerModel, scan_result_for
from shearlab.devices.twin.scanner_server import ScannerBridgeTwin
from shearlab.protocols.sequences import ImagingSpec, PushSpec, SequenceSpec

pytestmark = pytest.mark.timeout(30)

SMALL = SequenceSpec(imaging=ImagingSpec(n_frames=4, n_depth=16, n_lateral=24))


class SyntheticWorld:
    """Images a fixed pseudo-random speckle; remembers what it returned so tests can compare bitwise."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.contact = True
        self.crash: str | None = None
        self.pushes: list[bool] = []
        self.hold: threading.Event | None = None
        self.last: ScanResult | None = None

    def acquire(self, sequence: SequenceSpec, push: bool) -> ScanResult:
        self.pushes.append(push)
        if self.hold is not None:
            self.hold.wait(5.0)
        if self.crash:
            raise RuntimeError(self.crash)
        if not self.contact:
            raise ScanRefused(ErrorCode.NO_CONTACT, "push refused: no acoustic contact (probe force 0.00 N)")
        im = sequence.imaging
        rng = np.random.default_rng(len(self.pushes))
        shape = (1 + im.n_frames, im.n_depth, im.n_lateral)
        iq = (rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)).astype(np.complex64)
        self.last = scan_result_for(
            sequence, iq, push_start_s=self.clock.now(), pushed=push, metadata={"pose_m": [0.1, -0.2, 0.05], "note": "µ-test"}
        )
        return self.last


@pytest.fixture
def clock() -> Clock:
    # 1 virtual second = 1 ms: duty intervals pass at once unless a test picks a slower clock.
    return Clock(speed=1000.0)


@pytest.fixture
def world(clock: Clock) -> SyntheticWorld:
    return SyntheticWorld(clock)


def _twin(world: SyntheticWorld, clock: Clock, host: str, duty: DutyLimits = DutyLimits()) -> ScannerBridgeTwin:
    twin = ScannerBridgeTwin(host, 0, ScannerModel(world.acquire, clock, duty=duty))
    twin.start()
    return twin


@pytest.fixture
def twin(world: SyntheticWorld, clock: Clock, loopback_host: Callable[[], str]) -> Iterator[ScannerBridgeTwin]:
    twin = _twin(world, clock, loopback_host())
    yield twin
    twin.close()


@pytest.fixture
def client(twin: ScannerBridgeTwin, clock: Clock) -> Iterator[ScannerBridgeClient]:
    with ScannerBridgeClient(twin.host, twin.port, clock=clock) as c:
        yield c


def _types(twin: ScannerBridgeTwin) -> list[MessageType]:
    return [t for t, _ in twin.requests]


def _raw(twin: ScannerBridgeTwin) -> socket.socket:
    return socket.create_connection((twin.host, twin.port), timeout=5.0)


def _reply(sock: socket.socket) -> Frame:
    return recv_frame(sock, allowed=frozenset(MessageType), first_timeout_wall_s=5.0, timeout_wall_s=5.0)


# --- round trips -------------------------------------------------------------------------------------


def test_client_keeps_the_scanner_contract(client: ScannerBridgeClient) -> None:
    check_scanner(client, SMALL)


def test_identify_reports_the_scanner(client: ScannerBridgeClient) -> None:
    identity = client.identify()
    assert identity == TWIN_IDENTITY
    assert "Cephasonics" in str(identity)


def test_fire_returns_exactly_what_the_scanner_acquired(client: ScannerBridgeClient, world: SyntheticWorld) -> None:
    sequence_id = client.configure(SMALL)
    result = client.fire()
    sent = world.last
    assert sent is not None
    assert result.iq.dtype == np.complex64 and result.iq.shape == (5, 16, 24)
    assert result.iq.tobytes() == sent.iq.tobytes()
    for name in ("frame_times_s", "depth_m", "lateral_m"):
        assert getattr(result, name).tobytes() == getattr(sent, name).tobytes()
    assert result.push_start_s == sent.push_start_s
    assert result.push_duration_s == pytest.approx(2000 / 7.5e6, rel=1e-12)
    assert result.push_voltage_v == 120.0
    assert result.pushed and result.sequence_id == sequence_id
    assert result.metadata == {"pose_m": [0.1, -0.2, 0.05], "note": "µ-test"}
    # Frame 0 is the pre-push reference, one frame period before the push.
    assert result.frame_times_s[0] == pytest.approx(-1 / 7000)
    assert np.all(np.diff(result.frame_times_s) > 0)


def test_fire_without_push_images_only(client: ScannerBridgeClient, world: SyntheticWorld) -> None:
    client.configure(SMALL)
    result = client.fire(push=False)
    assert not result.pushed and result.push_duration_s == 0.0 and result.push_voltage_v == 0.0
    assert world.pushes == [False]


def test_full_size_sequence_transfers_bitwise(world: SyntheticWorld, clock: Clock, loopback_host: Callable[[], str]) -> None:
    twin = _twin(world, clock, loopback_host())
    try:
        with ScannerBridgeClient(twin.host, twin.port, clock=clock) as client:
            client.configure(SequenceSpec())
            result = client.fire()
    finally:
        twin.close()
    assert world.last is not None
    assert result.iq.shape == (36, 250, 600)
    assert result.iq.tobytes() == world.last.iq.tobytes()


def test_the_conversation_is_exactly_the_requests_made(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    sequence_id = client.configure(SMALL)
    client.fire()
    client.status()
    assert _types(twin) == [MessageType.IDENTIFY, MessageType.CONFIGURE, MessageType.FIRE, MessageType.STATUS]
    assert twin.requests[1][1]["sequence"] == SMALL.model_dump(mode="json")
    assert twin.requests[2][1] == {"sequence_id": sequence_id, "push": True}


def test_the_same_sequence_gets_the_same_id(client: ScannerBridgeClient) -> None:
    first = client.configure(SMALL)
    other = client.configure(SMALL.model_copy(update={"push": PushSpec(lateral_mm=4.0)}))
    assert client.configure(SMALL) == first != other


def test_status_reports_state_and_identity(client: ScannerBridgeClient) -> None:
    assert client.status().state == "idle"
    client.configure(SMALL)
    status = client.status()
    assert status.name == "scanner" and "Cicada" in status.identity
    assert status.state == "configured" and status.latency_ms > 0


def test_status_answers_while_another_client_fires(
    client: ScannerBridgeClient, twin: ScannerBridgeTwin, world: SyntheticWorld, clock: Clock
) -> None:
    client.configure(SMALL)
    world.hold = threading.Event()
    firing = threading.Thread(target=client.fire, daemon=True)
    firing.start()
    try:
        with ScannerBridgeClient(twin.host, twin.port, clock=clock, name="monitor") as monitor:
            deadline = time.monotonic() + 5.0
            while not world.pushes and time.monotonic() < deadline:
                time.sleep(0.001)
            assert monitor.read_state().state == "firing"
    finally:
        world.hold.set()
        firing.join(5.0)
    assert client.read_state().state == "configured"


# --- refusals and faults -------------------------------------------------------------------------------


def test_refused_push_is_a_typed_error_and_the_scanner_stays_usable(client: ScannerBridgeClient, world: SyntheticWorld) -> None:
    client.configure(SMALL)
    world.contact = False
    with pytest.raises(ScannerRefusedError, match="no acoustic contact") as info:
        client.fire()
    assert info.value.code is ErrorCode.NO_CONTACT and info.value.device == "scanner"
    assert not info.value.transient
    state = client.read_state()
    assert state.state == "configured" and state.last_error_code == ErrorCode.NO_CONTACT
    assert state.pushes == 0  # nothing was transmitted
    world.contact = True
    assert client.fire().iq.shape == (5, 16, 24)


def test_injected_fault_latches_until_configure(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    client.configure(SMALL)
    twin.scanner.inject_fault("HV supply tripped")
    with pytest.raises(ScannerRefusedError, match="HV supply tripped") as info:
        client.fire()
    assert info.value.code is ErrorCode.HARDWARE_FAULT
    assert client.read_state().state == "fault"
    assert client.status().state.startswith("fault (HARDWARE_FAULT: HV supply tripped")
    with pytest.raises(ScannerRefusedError, match="CONFIGURE again"):
        client.fire()
    client.configure(SMALL)
    assert client.fire().pushed


def test_a_crashing_acquisition_is_a_hardware_fault(client: ScannerBridgeClient, world: SyntheticWorld) -> None:
    client.configure(SMALL)
    world.crash = "beamformer out of memory"
    with pytest.raises(ScannerRefusedError, match="beamformer out of memory") as info:
        client.fire()
    assert info.value.code is ErrorCode.HARDWARE_FAULT


def test_scanner_rejects_a_push_outside_the_aperture(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    # Aperture 128 x 0.29 = 37.12 mm: a push centred at 18 mm with 11 elements (3.19 mm) leaves it.
    with pytest.raises(ScannerRefusedError, match="aperture") as info:
        client.configure(SMALL.model_copy(update={"push": PushSpec(lateral_mm=18.0)}))
    assert info.value.code is ErrorCode.INVALID_SEQUENCE
    assert client.sequence_id is None


def test_fire_before_configure_fails_without_io(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    with pytest.raises(ScannerRefusedError, match="configure") as info:
        client.fire()
    assert info.value.code is ErrorCode.NOT_CONFIGURED
    assert _types(twin) == [MessageType.IDENTIFY]


def test_invalid_arguments_fail_without_io(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    with pytest.raises(TypeError, match="SequenceSpec"):
        client.configure(SMALL.model_dump())  # type: ignore[arg-type]
    huge = SequenceSpec(imaging=ImagingSpec(n_frames=200, n_depth=1000, n_lateral=1000))
    with pytest.raises(ValueError, match="message limit"):
        client.configure(huge)
    client.configure(SMALL)
    with pytest.raises(TypeError, match="push"):
        client.fire(push=1)  # type: ignore[arg-type]
    assert _types(twin) == [MessageType.IDENTIFY, MessageType.CONFIGURE]


def test_calls_before_connect_fail_without_io(twin: ScannerBridgeTwin, clock: Clock) -> None:
    client = ScannerBridgeClient(twin.host, twin.port, clock=clock)
    with pytest.raises(DeviceConnectionError, match="connect"):
        client.configure(SMALL)
    assert twin.requests == []


def test_unreachable_scanner_names_the_address(clock: Clock, loopback_host: Callable[[], str]) -> None:
    host = loopback_host()
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    client = ScannerBridgeClient(host, port, clock=clock, name="us_scanner")
    with pytest.raises(DeviceConnectionError, match=f"{host}:{port}") as info:
        client.connect()
    assert info.value.device == "us_scanner"


def test_dropped_link_is_reported_then_the_next_call_reconnects(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    client.configure(SMALL)
    twin.drop_connection()
    with pytest.raises(DeviceConnectionError):
        client.fire()
    # The loaded sequence lives on the scanner and survives the reconnect.
    assert client.fire().iq.shape == (5, 16, 24)
    assert _types(twin)[-2:] == [MessageType.IDENTIFY, MessageType.FIRE]


# --- duty cycle ---------------------------------------------------------------------------------------


@pytest.fixture
def slow_clock() -> Clock:
    # 1 virtual second = 0.1 s wall: back-to-back requests take milliseconds, well inside the 1 s interval.
    return Clock(speed=10.0)


def test_duty_limit_refuses_a_push_too_soon(slow_clock: Clock, loopback_host: Callable[[], str]) -> None:
    world = SyntheticWorld(slow_clock)
    twin = _twin(world, slow_clock, loopback_host())
    try:
        with ScannerBridgeClient(twin.host, twin.port, clock=slow_clock) as client:
            client.configure(SMALL)
            client.fire()
            with pytest.raises(ScannerRefusedError, match="duty") as info:
                client.fire()
            assert info.value.code is ErrorCode.DUTY_LIMIT and info.value.transient
            assert info.value.retry_after_s is not None and 0.5 < info.value.retry_after_s <= 1.0
            assert client.read_state().push_ready_in_s > 0
            assert not client.fire(push=False).pushed  # imaging alone has no duty cost
            assert client.fire(wait_duty_s=2.0).pushed
            assert client.read_state().pushes == 2
    finally:
        twin.close()


def test_duty_window_budget_known_answer(slow_clock: Clock, loopback_host: Callable[[], str]) -> None:
    # 10000 cycles at 7.5 MHz = 1.333 ms per push; budget 1e-3 x 10 s = 10 ms: 7 pushes fit, the 8th not.
    world = SyntheticWorld(slow_clock)
    twin = _twin(world, slow_clock, loopback_host(), duty=DutyLimits(min_push_interval_s=0.0, max_duty_cycle=1e-3, window_s=10.0))
    long_push = SMALL.model_copy(update={"push": PushSpec(cycles=10000)})
    try:
        with ScannerBridgeClient(twin.host, twin.port, clock=slow_clock) as client:
            client.configure(long_push)
            first = client.fire()
            for _ in range(6):
                client.fire()
            with pytest.raises(ScannerRefusedError) as info:
                client.fire()
            assert info.value.code is ErrorCode.DUTY_LIMIT
            retry_s = info.value.retry_after_s
            assert retry_s is not None
            # The first push leaves the window 10 s after it started.
            elapsed_s = slow_clock.now() - first.push_start_s
            assert retry_s == pytest.approx(10.0 - elapsed_s, abs=0.2)
            assert client.read_state().duty_cycle == pytest.approx(7 * 10000 / 7.5e6 / 10.0)
    finally:
        twin.close()


def test_a_push_longer_than_the_duty_budget_is_an_invalid_sequence(world: SyntheticWorld, clock: Clock,
                                                                     loopback_host: Callable[[], str]) -> None:
    twin = _twin(world, clock, loopback_host(), duty=DutyLimits(max_duty_cycle=1e-4, window_s=10.0))
    try:
        with ScannerBridgeClient(twin.host, twin.port, clock=clock) as strict:
            with pytest.raises(ScannerRefusedError, match="duty budget") as info:
                strict.configure(SMALL.model_copy(update={"push": PushSpec(cycles=10000)}))
            assert info.value.code is ErrorCode.INVALID_SEQUENCE
    finally:
        twin.close()


# --- garbage on the wire ---------------------------------------------------------------------------------


def test_garbage_bytes_get_an_error_and_other_clients_keep_working(client: ScannerBridgeClient, twin: ScannerBridgeTwin) -> None:
    client.configure(SMALL)
    with _raw(twin) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: scanner\r\n\r\n")
        reply = _reply(raw)
        assert reply.type is MessageType.ERROR and reply.header.code == ErrorCode.BAD_MESSAGE
        assert "bad magic" in reply.header.message
        assert raw.recv(1) == b""  # framing lost: the server hangs up on this client only
    assert client.fire().pushed


def test_a_well_framed_bad_request_keeps_the_connection(twin: ScannerBridgeTwin) -> None:
    with _raw(twin) as raw:
        header = b'{"sequence_id": "", "push": "yes"}'
        raw.sendall(PREFIX.pack(MAGIC, 1, MessageType.FIRE, 7, len(header), 0) + header)
        reply = _reply(raw)
        assert reply.type is MessageType.ERROR and reply.request_id == 7
        assert reply.header.code == ErrorCode.BAD_MESSAGE and "FIRE header invalid" in reply.header.message
        raw.sendall(PREFIX.pack(MAGIC, 1, 0x42, 8, 2, 0) + b"{}")
        assert "unexpected message type 0x42" in _reply(raw).header.message
        raw.sendall(encode_frame(MessageType.IDENTIFY, 9, IdentifyRequest(client="raw test")))
        reply = _reply(raw)
        assert reply.type is MessageType.IDENTITY and reply.request_id == 9


def test_an_unsupported_version_is_answered_then_closed(twin: ScannerBridgeTwin) -> None:
    with _raw(twin) as raw:
        raw.sendall(PREFIX.pack(MAGIC, 2, MessageType.IDENTIFY, 1, 2, 0) + b"{}")
        reply = _reply(raw)
        assert reply.header.code == ErrorCode.UNSUPPORTED_VERSION
        assert reply.header.supported_versions == (1,)
        assert raw.recv(1) == b""


def test_a_frame_that_stops_halfway_is_dropped_not_waited_on(twin: ScannerBridgeTwin) -> None:
    with _raw(twin) as raw:
        raw.sendall(MAGIC + b"\x00\x01")
        started = time.monotonic()
        reply = _reply(raw)
        # 10 virtual seconds at speed 1000 is 10 ms; the clock's I/O floor makes it 0.5 s wall.
        assert 0.4 < time.monotonic() - started < 2.0
        assert reply.header.code == ErrorCode.BAD_MESSAGE and "incomplete" in reply.header.message
        assert raw.recv(1) == b""


def test_a_sequence_that_does_not_validate_is_an_invalid_sequence(twin: ScannerBridgeTwin) -> None:
    bad = SMALL.model_dump(mode="json")
    bad["push"]["voltage_v"] = 500.0
    with _raw(twin) as raw:
        raw.sendall(encode_frame(MessageType.CONFIGURE, 4, ConfigureRequest(sequence=bad)))
        reply = _reply(raw)
        assert reply.header.code == ErrorCode.INVALID_SEQUENCE and "push.voltage_v" in reply.header.message


def test_requests_with_a_payload_are_refused_before_reading_it(twin: ScannerBridgeTwin) -> None:
    with _raw(twin) as raw:
        raw.sendall(PREFIX.pack(MAGIC, 1, MessageType.STATUS, 3, 2, 1 << 40) + b"{}")
        reply = _reply(raw)
        assert reply.header.code == ErrorCode.BAD_MESSAGE and "payload length" in reply.header.message


# --- a misbehaving scanner ------------------------------------------------------------------------------


def _fake_scanner(host: str, handle_fire: Callable[[socket.socket, int], None]) -> tuple[str, int, threading.Thread, socket.socket]:
    """A one-connection bridge on ``host`` that answers IDENTIFY and CONFIGURE properly and FIRE/STATUS with ``handle_fire``."""
    listener = socket.create_server((host, 0))
    identity = IdentityReply(
        vendor="x", model="y", serial="1", firmware="1", n_channels=128, protocol_version=1,
        max_payload_bytes=MAX_PAYLOAD_BYTES, min_push_interval_s=1.0, max_duty_cycle=1e-3, duty_window_s=10.0,
    )  # fmt: skip

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while True:
                try:
                    frame = recv_frame(conn, allowed=REQUEST_TYPES, first_timeout_wall_s=5.0, timeout_wall_s=5.0)
                except Exception:
                    return
                if frame.type is MessageType.IDENTIFY:
                    send_frame(conn, MessageType.IDENTITY, frame.request_id, identity)
                elif frame.type is MessageType.CONFIGURE:
                    send_frame(conn, MessageType.CONFIGURED, frame.request_id, ConfiguredReply(sequence_id="s1", iq_shape=(5, 16, 24)))
                else:
                    handle_fire(conn, frame.request_id)
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return host, listener.getsockname()[1], thread, listener


def test_a_truncated_scan_is_a_protocol_error_not_a_hang(clock: Clock, loopback_host: Callable[[], str]) -> None:
    def half_a_scan(conn: socket.socket, request_id: int) -> None:
        iq = np.zeros((5, 16, 24), np.complex64)
        reply = ScanReply(sequence_id="s1", pushed=True, push_start_s=0.0, push_duration_s=0.0, push_voltage_v=0.0)
        buffers = frame_buffers(MessageType.SCAN, request_id, reply, {"iq": iq})
        conn.sendall(buffers[0])
        conn.sendall(bytes(buffers[1])[: iq.nbytes // 2])

    host, port, thread, listener = _fake_scanner(loopback_host(), half_a_scan)
    with listener, ScannerBridgeClient(host, port, clock=clock) as client:
        client.configure(SMALL)
        started = time.monotonic()
        with pytest.raises(DeviceProtocolError, match="truncated frame") as info:
            client.fire()
        assert time.monotonic() - started < 2.0
        assert info.value.transient
    thread.join(5.0)


def test_a_silent_scanner_times_out(clock: Clock, loopback_host: Callable[[], str]) -> None:
    silence = threading.Event()

    def say_nothing(conn: socket.socket, request_id: int) -> None:
        silence.wait(5.0)

    host, port, thread, listener = _fake_scanner(loopback_host(), say_nothing)
    with listener, ScannerBridgeClient(host, port, clock=clock, timeout_s=1.0) as client:
        started = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match="STATUS"):
            client.read_state()
        # 1 virtual second at speed 1000 is 1 ms; the clock's I/O floor makes it 0.5 s wall.
        assert 0.4 < time.monotonic() - started < 2.0
    silence.set()
    thread.join(5.0)


def test_a_reply_to_another_request_is_a_protocol_error(clock: Clock, loopback_host: Callable[[], str]) -> None:
    def wrong_id(conn: socket.socket, request_id: int) -> None:
        send_frame(conn, MessageType.CONFIGURED, request_id + 5, ConfiguredReply(sequence_id="s1", iq_shape=(5, 16, 24)))

    host, port, thread, listener = _fake_scanner(loopback_host(), wrong_id)
    with listener, ScannerBridgeClient(host, port, clock=clock) as client:
        with pytest.raises(DeviceProtocolError, match="request id"):
            client.read_state()
    thread.join(5.0)


# --- the codec alone ------------------------------------------------------------------------------------

_dtypes = st.sampled_from([np.dtype("<c8"), np.dtype("<f4"), np.dtype("<f8")])
_arrays = _dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    request_id=st.integers(0, 2**32 - 1),
    arrays=st.dictionaries(st.text(min_size=1, max_size=12), _arrays, max_size=4),
    metadata=st.dictionaries(st.text(max_size=8), _json, max_size=4),
    push_start_s=st.floats(allow_nan=False, allow_infinity=False),
)
def test_frames_round_trip_bitwise(request_id: int, arrays: dict[str, np.ndarray], metadata: dict, push_start_s: float) -> None:
    header = ScanReply(
        sequence_id="abc", pushed=True, push_start_s=push_start_s, push_duration_s=2.5e-4, push_voltage_v=120.0, metadata=metadata
    )
    frame = decode_frame(encode_frame(MessageType.SCAN, request_id, header, arrays))
    assert frame.type is MessageType.SCAN and frame.request_id == request_id
    assert frame.header.model_dump(exclude={"arrays"}) == header.model_dump(exclude={"arrays"})
    assert list(frame.arrays) == list(arrays)
    for name, array in arrays.items():
        got = frame.arrays[name]
        assert got.dtype == array.dtype and got.shape == array.shape
        assert got.tobytes() == np.ascontiguousarray(array).tobytes()


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(0, 10_000), data=st.data())
def test_any_truncation_is_a_clear_error(cut: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(5)
    encoded = encode_frame(
        MessageType.FIRE, 1, FireRequest(sequence_id="abc"), {"x": rng.standard_normal(7).astype("<f4")}
    )
    cut = cut % len(encoded)
    with pytest.raises(BridgeProtocolError) as info:
        decode_frame(encoded[:cut])
    assert info.value.framing_lost


@settings(max_examples=60, deadline=None)
@given(junk=st.binary(min_size=1, max_size=200))
def test_random_bytes_never_decode(junk: bytes) -> None:
    with pytest.raises(BridgeProtocolError):
        decode_frame(junk)


def test_decode_names_what_is_wrong() -> None:
    good = encode_frame(MessageType.FIRE, 1, FireRequest(sequence_id="abc"))
    with pytest.raises(BridgeProtocolError, match="bad magic"):
        decode_frame(b"XXXX" + good[4:])
    with pytest.raises(BridgeProtocolError, match="version 9"):
        decode_frame(good[:4] + struct.pack(">H", 9) + good[6:])
    oversize = PREFIX.pack(MAGIC, 1, MessageType.SCAN, 1, 2, MAX_PAYLOAD_BYTES + 1) + b"{}"
    with pytest.raises(BridgeProtocolError, match="over the limit"):
        decode_frame(oversize)
    with pytest.raises(BridgeProtocolError, match="after the end"):
        decode_frame(good + b"\x00")
    lying = encode_frame(MessageType.SCAN, 1, _scan_header(), {"iq": np.zeros(3, np.complex64)})
    with pytest.raises(BridgeProtocolError, match="declare 24 bytes but the payload is 25"):
        decode_frame(lying[:PREFIX.size - 8] + struct.pack(">Q", 25) + lying[PREFIX.size :] + b"\x00")


def test_encode_refuses_dtypes_the_wire_does_not_carry() -> None:
    with pytest.raises(ValueError, match="<c16"):
        encode_frame(MessageType.SCAN, 1, _scan_header(), {"iq": np.zeros(3, np.complex128)})


def test_arrays_are_sent_without_copies() -> None:
    iq = np.zeros((3, 4, 5), np.complex64)
    buffers = frame_buffers(MessageType.SCAN, 1, _scan_header(), {"iq": iq})
    block = buffers[1]
    assert isinstance(block, memoryview) and np.shares_memory(np.frombuffer(block, np.uint8), iq)


def _scan_header() -> ScanReply:
    return ScanReply(sequence_id="abc", pushed=False, push_start_s=0.0, push_duration_s=0.0, push_voltage_v=0.0)
