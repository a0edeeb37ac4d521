"""``shearlab twin serve``: every device of the rig, served on one loopback address.

Runs in its own process (the ``ur_rtde`` constructors hold the GIL, so a twin inside the client's
process deadlocks). Once every server accepts connections it prints exactly one line of JSON with
the endpoints to stdout (and to ``--endpoints FILE``), then serves until SIGTERM/SIGINT, or until
the process named by ``parent_pid`` is gone.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.twin.world import World
from shearlab.devices.twin.world_config import WorldConfig, load_world

# Control endpoint port on the twin's address: fixed so a rig file can name it, like the others.
CONTROL_PORT = 50100
SCANNER_PORT = 50200
GCS_PORT = 50000
# Probe parked above the tallest phantom, pointing down (rotation pi about x).
HOME_POSE = np.array([0.0, 0.20, 0.25, np.pi, 0.0, 0.0])
# The Nano17 saturates at 17 N: the rig's hard stop halts the hexapod well before.
INDENTER_HARD_LIMIT_N = 10.0


@dataclass
class Twin:
    """A running twin: the world, the motion models and every protocol server."""

    host: str
    clock: Clock
    world: World
    components: dict[str, Any] = field(default_factory=dict)
    _closers: list[Any] = field(default_factory=list)

    @property
    def endpoints(self) -> dict[str, Any]:
        c = self.components
        return {
            "ur": {"host": self.host},
            "hexapod": {"host": self.host, "port": GCS_PORT, "serial": c["gcs_pty"].device_path},
            "probe_ft": {"serial": c["probe_ft"].device_path},
            "indenter_ft": {"serial": c["indenter_ft"].device_path},
            "scanner": {"host": self.host, "port": c["scanner"].port},
            "control": {"host": self.host, "port": c["control"].port},
            "speed": self.clock.speed,
        }

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except OSError:
                pass


def build_twin(host: str, *, speed: float = 1.0, world: WorldConfig | None = None, seed: int = 0) -> Twin:
    """Create and start every server of a twin on ``host``."""
    from shearlab.devices.twin.ati_controller import ATISerialTwin
    from shearlab.devices.twin.control import ControlServer
    from shearlab.devices.twin.gcs_server import GCSServer
    from shearlab.devices.twin.hexapod_model import HexapodModel
    from shearlab.devices.twin.robot_model import RobotModel
    from shearlab.devices.twin.scanner_acquisition import TwinScannerBackend
    from shearlab.devices.twin.scanner_server import ScannerBridgeTwin
    from shearlab.devices.twin.ur_controller import URControllerTwin

    clock = Clock(speed=speed)
    world_state = World(world or load_world())
    twin = Twin(host=host, clock=clock, world=world_state)

    robot = RobotModel(
        clock,
        contact_force_n=world_state.probe_contact_force_n,
        force_limit_n=world_state.config.robot_contact_limit_n,
        initial_pose=HOME_POSE.copy(),
    )
    hexapod = HexapodModel(clock)
    world_state.attach(robot_pose=robot.pose, plate_z_mm=lambda: hexapod.position_mm()["Z"])
    hexapod.set_motion_guard(lambda pos: world_state.indentation_force_n(pos["Z"]) < INDENTER_HARD_LIMIT_N)

    def start(name: str, component: Any) -> Any:
        component.start()
        twin.components[name] = component
        twin._closers.append(component.close)
        return component

    twin.components["robot"] = robot
    twin.components["hexapod_model"] = hexapod
    start("ur", URControllerTwin(host, robot, clock))
    start("gcs_tcp", GCSServer.tcp(host, GCS_PORT, hexapod))
    start("gcs_pty", GCSServer.pty(hexapod))
    start("probe_ft", ATISerialTwin("nano43", world_state.probe_wrench, clock, seed=seed + 1))
    start("indenter_ft", ATISerialTwin("nano17", world_state.indenter_wrench, clock, seed=seed + 2))
    backend = TwinScannerBackend(world_state, robot_pose=robot.pose, seed=seed, now_s=clock.now)
    start("scanner", ScannerBridgeTwin(host, SCANNER_PORT, backend.acquire, clock))
    start("control", ControlServer(host, CONTROL_PORT, _operations(twin)))
    return twin


def _operations(twin: Twin) -> dict[str, Any]:
    """Control-endpoint operations: operator steps, state for tests, fault injection."""
    from shearlab.protocols.phantoms import Cylinder

    c = twin.components
    world = twin.world

    def place_cylinder(batch_id: str, concentration_pct: float, index: int) -> str:
        world.place_cylinder(Cylinder(batch_id=batch_id, concentration_pct=concentration_pct, index=index))
        return f"cylinder {index} of batch {batch_id} placed"

    def remove_cylinder() -> str:
        world.place_cylinder(None)
        return "cylinder removed"

    def state() -> dict[str, Any]:
        contact = world.current_probe_contact()
        return {
            "time_s": twin.clock.now(),
            "robot_pose": [float(v) for v in c["robot"].pose()],
            "protective_stopped": bool(c["robot"].is_protective_stopped()),
            "probe_force_n": contact.force_n,
            "probe_indentation_mm": contact.indentation_mm,
            "probe_over": contact.block.name if contact.block else None,
            "plate_z_mm": c["hexapod_model"].position_mm()["Z"],
            "indenter_force_n": world.indentation_force_n(c["hexapod_model"].position_mm()["Z"]),
            "cylinder": world.cylinder.model_dump() if world.cylinder else None,
        }

    def fault(device: str, kind: str, **arguments: Any) -> str:
        table = {
            ("robot", "protective_stop"): lambda: c["robot"].trigger_protective_stop("injected"),
            ("robot", "drop_rtde"): lambda: c["ur"].drop_rtde_stream(float(arguments.get("duration_s", 1.0))),
            ("hexapod", "error"): lambda: c["hexapod_model"].inject_error(int(arguments["code"])),
            ("hexapod", "stall"): lambda: c["hexapod_model"].stall_axis(str(arguments.get("axis", "Z"))),
            ("scanner", "fault"): lambda: c["scanner"].inject_fault(str(arguments.get("message", "injected fault"))),
            ("scanner", "drop"): lambda: c["scanner"].drop_connection(),
        }
        for sensor in ("probe_ft", "indenter_ft"):
            table[(sensor, "unplug")] = c[sensor].unplug
            table[(sensor, "replug")] = c[sensor].replug
            table[(sensor, "garbage")] = lambda s=sensor: c[s].inject_garbage(int(arguments.get("n_bytes", 16)))
            table[(sensor, "drop_records")] = lambda s=sensor: c[s].drop_records(int(arguments.get("n", 1)))
        action = table.get((device, kind))
        if action is None:
            raise ValueError(f"no fault {kind!r} for device {device!r}; known: {sorted(table)}")
        action()
        return f"{device}: {kind} injected"

    return {
        "ping": lambda: "pong",
        "place_cylinder": place_cylinder,
        "remove_cylinder": remove_cylinder,
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
) -> None:
    """Run a twin until SIGTERM/SIGINT (or the parent process exits)."""
    twin = build_twin(host, speed=speed, world=load_world(world_path))
    line = json.dumps(twin.endpoints)
    if endpoints_path is not None:
        endpoints_path.write_text(line + "\n")
    print(line, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if parent_pid is not None and not _alive(parent_pid):
            break
    twin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m shearlab.devices.twin.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.5")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--endpoints", type=Path)
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args()
    serve(args.host, speed=args.speed, world_path=args.world, endpoints_path=args.endpoints, parent_pid=args.parent_pid)


if __name__ == "__main__":
    main()
