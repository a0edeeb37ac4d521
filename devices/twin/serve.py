"""``shearlab twin serve``: every device of the rig, served on one loopback address; and
``shearlab twin ur-floor``: one UR controller over a flat floor, the UR driver's test bed.

Each runs in its own process (the ``ur_rtde`` constructors hold the GIL, so a twin inside the client's
process deadlocks). Once every server accepts connections it prints exactly one line of JSON (for
``serve`` the ``Endpoints``, also to ``--endpoints FILE``), then serves until SIGTERM/SIGINT, or until
the process named by ``parent_pid`` is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shearlab.devices.clock import Clock
from shearlab.devices.endpoints import Endpoints, HexapodAddress, HostAddress, SerialAddress, TcpAddress
from shearlab.devices.stand_in import Fault
from shearlab.devices.twin.ati_controller import ATISerialTwin
from shearlab.devices.twin.bench import Bench, build_bench
from shearlab.devices.twin.control import ControlServer, Operation
from shearlab.devices.twin.gcs_server import GCSServer
from shearlab.devices.twin.robot_model import RobotModel
from shearlab.devices.twin.scanner_server import ScannerBridgeTwin
from shearlab.devices.twin.ur_controller import URControllerTwin, flat_floor
from shearlab.devices.twin.world_config import WorldConfig, load_world
from shearlab.protocols.fields import is_loopback
from shearlab.protocols.phantoms import Cylinder

# Control endpoint port on the twin's address: fixed so a rig file can name it, like the others.
CONTROL_PORT = 50100
SCANNER_PORT = 50200
GCS_PORT = 50000


@dataclass
class Twin:
    """A running twin: the bench and every protocol server around it."""

    host: str
    bench: Bench
    ur: URControllerTwin
    gcs_tcp: GCSServer
    gcs_pty: GCSServer
    probe_ft: ATISerialTwin
    indenter_ft: ATISerialTwin
    scanner: ScannerBridgeTwin
    control: ControlServer | None = None
    token: str | None = None
    _closers: list[Any] = field(default_factory=list)

    @property
    def endpoints(self) -> Endpoints:
        serial = self.gcs_pty.device_path
        if serial is None:
            raise RuntimeError("the hexapod's pseudo-terminal is not open")
        return Endpoints(
            robot=HostAddress(host=self.host),
            hexapod=HexapodAddress(host=self.host, port=GCS_PORT, serial=serial),
            probe_ft=SerialAddress(serial=self.probe_ft.device_path),
            indenter_ft=SerialAddress(serial=self.indenter_ft.device_path),
            scanner=TcpAddress(host=self.host, port=self.scanner.port),
            control=TcpAddress(host=self.host, port=CONTROL_PORT if self.control is None else self.control.port),
            speed=self.bench.clock.speed,
            token=self.token,
        )

    def inject_fault(self, fault: Fault) -> None:
        """A fault of a device model goes to the bench; a link fault to the server of that device."""
        if self.bench.inject_device_fault(fault):
            return
        sensor = self.probe_ft if fault.device == "probe_ft" else self.indenter_ft
        match fault.device, fault.kind:
            case "robot", "drop_rtde":
                self.ur.drop_rtde_stream(fault.duration_s)
            case "scanner", "drop":
                self.scanner.drop_connection()
            case _, "unplug":
                sensor.unplug()
            case _, "replug":
                sensor.replug()
            case _, "garbage":
                sensor.inject_garbage(fault.n_bytes)
            case _, "drop_records":
                sensor.drop_records(fault.n)

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except OSError:
                pass


# A guessable token protects nothing: 16 characters of a URL-safe alphabet are 96 bits.
MIN_TOKEN_CHARS = 16


class RemoteHostError(ValueError):
    """A twin asked to serve a non-loopback address without ``allow_remote``."""


def twin_token(host: str, *, allow_remote: bool, given: str | None = None) -> str | None:
    """The token a twin on ``host`` requires: ``given`` if any (a shared machine may want one on loopback
    too), none for a loopback twin, a fresh secret for one that serves a network, which ``allow_remote``
    must allow.

    The twin's ports can unlock a protective stop and inject faults; on a network only a holder of the
    token (printed with the endpoints) may.
    """
    if not is_loopback(host) and not allow_remote:
        raise RemoteHostError(f"{host} is not a loopback address: the twin's ports can unlock a protective stop and "
                              "inject faults; serve a network only with --allow-remote (the twin then requires its token)")
    if given is not None:
        if len(given) < MIN_TOKEN_CHARS:
            raise ValueError(f"a twin token has at least {MIN_TOKEN_CHARS} characters")
        return given
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def build_twin(host: str, *, speed: float = 1.0, world: WorldConfig | None = None, seed: int = 0,
               allow_remote: bool = False, token: str | None = None) -> Twin:
    """Create and start every server of a twin on ``host`` (a loopback address unless ``allow_remote``)."""
    token = twin_token(host, allow_remote=allow_remote, given=token)
    bench = build_bench(Clock(speed=speed), world, seed=seed)
    clock = bench.clock
    twin = Twin(
        host=host,
        bench=bench,
        token=token,
        ur=URControllerTwin(host, bench.robot, clock, token=token),
        gcs_tcp=GCSServer.tcp(host, GCS_PORT, bench.hexapod),
        gcs_pty=GCSServer.pty(bench.hexapod),
        probe_ft=ATISerialTwin(bench.probe_ft, clock, seed=seed + 1),
        indenter_ft=ATISerialTwin(bench.indenter_ft, clock, seed=seed + 2),
        scanner=ScannerBridgeTwin(host, SCANNER_PORT, bench.scanner),
    )
    twin.control = ControlServer(host, CONTROL_PORT, _operations(twin), token=token)
    for server in (twin.ur, twin.gcs_tcp, twin.gcs_pty, twin.probe_ft, twin.indenter_ft, twin.scanner, twin.control):
        server.start()
        twin._closers.append(server.close)
    return twin


def _operations(twin: Twin) -> dict[str, Operation]:
    """Control-endpoint operations (``shearlab.devices.twin_client.control``): the twin as ``StandIn``."""

    def place_cylinder(cylinder: dict[str, Any]) -> None:
        twin.bench.place_cylinder(Cylinder.model_validate(cylinder))

    def state() -> dict[str, Any]:
        return twin.bench.state().model_dump(mode="json")

    def fault(**arguments: Any) -> None:
        twin.inject_fault(Fault.model_validate(arguments))

    return {
        "ping": lambda: "pong",
        "place_cylinder": place_cylinder,
        "remove_cylinder": twin.bench.remove_cylinder,
        "state": state,
        "fault": fault,
    }


def serve(
    host: str,
    *,
    speed: float = 1.0,
    world_path: Path | None = None,
    endpoints_path: Path | None = None,
    parent_pid: int | None = None,
    allow_remote: bool = False,
    token: str | None = None,
) -> None:
    """Run a twin until SIGTERM/SIGINT (or the parent process exits)."""
    twin = build_twin(host, speed=speed, world=load_world(world_path), allow_remote=allow_remote, token=token)
    line = twin.endpoints.model_dump_json()
    if endpoints_path is not None:
        endpoints_path.write_text(line + "\n")
    _serve_until_stopped(line, twin.close, parent_pid)


def serve_ur_floor(
    host: str,
    *,
    speed: float = 1.0,
    floor_z_m: float = 0.10,
    stiffness_n_per_m: float = 2000.0,
    force_limit_n: float = 5.0,
    parent_pid: int | None = None,
    allow_remote: bool = False,
    token: str | None = None,
) -> None:
    """Run one UR controller twin whose probe meets a flat elastic floor, with a control endpoint that
    reports the controller's view (pose, force, stop reason, command log) and takes the robot's faults."""
    token = twin_token(host, allow_remote=allow_remote, given=token)
    clock = Clock(speed=speed)
    robot = RobotModel(clock, contact_force_n=flat_floor(floor_z_m, stiffness_n_per_m), force_limit_n=force_limit_n)
    ur = URControllerTwin(host, robot, clock, token=token)
    ur.start()

    def fault(**arguments: Any) -> None:
        injected = Fault.model_validate(arguments)
        if injected.device != "robot":
            raise ValueError(f"this twin has only a robot, not a {injected.device}")
        if injected.kind == "drop_rtde":
            ur.drop_rtde_stream(injected.duration_s)
        else:
            robot.trigger_protective_stop("injected")

    def state() -> dict[str, Any]:
        return {
            "time_s": clock.now(),
            "pose": [float(v) for v in robot.pose()],
            "force_n": robot.contact_force_n(),
            "protective_stopped": robot.is_protective_stopped(),
            "reason": robot.protective_stop_reason(),
            "program_running": ur.program_running,
            "commands": list(ur.commands),
            "threads": threading.active_count(),
        }

    control = ControlServer(host, 0, {"fault": fault, "state": state, "ping": lambda: "pong"}, token=token)
    control.start()

    def close() -> None:
        control.close()
        ur.close()

    _serve_until_stopped(json.dumps({"host": host, "control_port": control.port, "speed": speed, "token": token}), close, parent_pid)


def _serve_until_stopped(line: str, close: Callable[[], None], parent_pid: int | None) -> None:
    """Print the ready line, then serve until SIGTERM/SIGINT or until ``parent_pid`` is gone."""
    print(line, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if parent_pid is not None and not _alive(parent_pid):
            break
    close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
