"""A twin serves loopback unless told otherwise, and then only holders of its token may unlock, place or
inject; its per-connection bounds close an offender."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from shearlab.devices.clock import Clock
from shearlab.devices.connect import release_protective_stop, stand_in_for
from shearlab.devices.stand_in import Fault
from shearlab.devices.twin.control import ControlServer
from shearlab.devices.twin.guard import CpuBudget, LineReader, Offender
from shearlab.devices.twin.robot_model import RobotModel
from shearlab.devices.twin.serve import RemoteHostError, twin_token
from shearlab.devices.twin.ur_controller import DASHBOARD_PORT, URControllerTwin, flat_floor
from shearlab.devices.twin_client import TwinControl, TwinProcess
from shearlab.devices.twin_client.control import ControlError
from shearlab.protocols.rig import load_rig

ROOT = Path(__file__).resolve().parents[2]


def test_a_twin_serves_a_network_only_when_allowed_and_then_with_a_token() -> None:
    assert twin_token("127.0.0.5", allow_remote=False) is None
    assert twin_token("localhost", allow_remote=True) is None
    with pytest.raises(RemoteHostError, match="0.0.0.0 is not a loopback address.*--allow-remote"):
        twin_token("0.0.0.0", allow_remote=False)
    first, second = twin_token("0.0.0.0", allow_remote=True), twin_token("10.1.2.3", allow_remote=True)
    assert first and second and first != second and len(first) >= 32
    assert twin_token("127.0.0.5", allow_remote=False, given="a-shared-machine") == "a-shared-machine"
    with pytest.raises(ValueError, match="at least 16 characters"):
        twin_token("127.0.0.5", allow_remote=False, given="short")


def _ask(sock: socket.socket, request: dict[str, object]) -> dict[str, object]:
    sock.sendall(json.dumps(request).encode() + b"\n")
    reply: dict[str, object] = json.loads(sock.makefile("rb").readline())
    return reply


def test_control_requests_need_the_token_of_a_networked_twin(loopback_host: Callable[[], str]) -> None:
    faults: list[dict[str, object]] = []
    server = ControlServer(loopback_host(), 0, {"ping": lambda: "pong", "fault": lambda **kw: faults.append(kw)}, token="s3cret")
    server.start()
    try:
        with closing(socket.create_connection((server.host, server.port), timeout=5)) as sock:
            assert _ask(sock, {"op": "ping"}) == {"ok": True, "result": "pong"}
            refused = _ask(sock, {"op": "fault", "device": "robot", "kind": "protective_stop"})
            assert refused["ok"] is False and "token" in str(refused["error"]) and not faults
            assert _ask(sock, {"op": "fault", "token": "guess", "device": "robot"})["ok"] is False
            assert _ask(sock, {"op": "fault", "token": "s3cret", "device": "robot"}) == {"ok": True, "result": None}
            assert faults == [{"device": "robot"}]
    finally:
        server.close()


def test_the_dashboard_of_a_networked_twin_unlocks_only_after_its_token(loopback_host: Callable[[], str]) -> None:
    clock = Clock(speed=100.0)
    robot = RobotModel(clock, contact_force_n=flat_floor(0.1, 2000.0))
    robot.trigger_protective_stop("test")
    clock.sleep(6.0)  # PolyScope unlocks no earlier than 5 s after the stop
    host = loopback_host()
    with URControllerTwin(host, robot, clock, token="s3cret"), \
            closing(socket.create_connection((host, DASHBOARD_PORT), timeout=5)) as sock:
        lines = sock.makefile("rb")
        lines.readline()  # the banner

        def say(line: str) -> str:
            sock.sendall(line.encode() + b"\n")
            return lines.readline().decode().strip()

        assert say("unlock protective stop").startswith("Cannot unlock protective stop: this twin serves a network")
        assert robot.is_protective_stopped()
        assert say("token guess") == "Token refused"
        assert say("unlock protective stop").startswith("Cannot unlock")
        assert say("token s3cret") == "Token accepted"
        assert say("unlock protective stop") == "Protective stop releasing"
        assert not robot.is_protective_stopped()


def test_a_line_too_long_or_too_much_cpu_is_an_offence(loopback_host: Callable[[], str]) -> None:
    budget = CpuBudget(share=0.5, burst_s=1.0)
    budget.charge(0.9)
    with pytest.raises(Offender, match="50% of a core"):
        budget.charge(0.2)
    left, right = socket.socketpair()
    with closing(left), closing(right):
        right.sendall(b"short\n" + b"x" * 100)
        reader = LineReader(left, limit=64)
        assert reader.next_line() == b"short"
        with pytest.raises(Offender, match="longer than 64 bytes"):
            reader.next_line()


@pytest.mark.slow
def test_the_drivers_bring_the_token_of_a_twin_that_asks_for_one(twin_factory: Callable[..., TwinProcess],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEARLAB_TWIN_TOKEN", "a-shared-lab-machine")
    twin = twin_factory(speed=10.0)
    assert twin.endpoints.token == "a-shared-lab-machine"
    with TwinControl(twin.endpoints.control) as stranger, pytest.raises(ControlError, match="token"):
        stranger.inject_fault(Fault(device="robot", kind="protective_stop"))
    rig = load_rig(ROOT / "rigs" / "twin.toml")
    with stand_in_for(twin.endpoints) as stand_in:
        assert stand_in is not None
        stand_in.inject_fault(Fault(device="robot", kind="protective_stop"))
        assert stand_in.state().protective_stopped
        confirmed: list[str] = []
        release_protective_stop(rig, twin.endpoints, confirm=confirmed.append)
        assert confirmed and not stand_in.state().protective_stopped
