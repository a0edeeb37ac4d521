"""Open every device of a rig file: the real drivers, pointed at the lab's hardware or at a twin.

With a ``[twin]`` table in the rig file, a twin process is started (or an already running one is
used, given its endpoints) and every address the rig file leaves out is taken from the twin.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from shearlab.devices.clock import Clock
from shearlab.devices.errors import DeviceError
from shearlab.devices.interfaces import DeviceStatus, ForceSensor, Hexapod, Robot
from shearlab.devices.twin.control import TwinControl
from shearlab.protocols.rig import Rig

DEVICE_NAMES = ("robot", "hexapod", "probe_ft", "indenter_ft", "scanner")


@dataclass
class RigDevices:
    """Connected drivers of one rig; ``control`` is the twin's control endpoint when on a twin."""

    rig: Rig
    clock: Clock
    robot: Robot | None = None
    hexapod: Hexapod | None = None
    probe_ft: ForceSensor | None = None
    indenter_ft: ForceSensor | None = None
    scanner: Any = None
    control: TwinControl | None = None
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> RigDevices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clock_for(rig: Rig, endpoints: dict[str, Any] | None) -> Clock:
    if rig.clock.kind == "twin":
        if endpoints is None:
            raise ValueError("a twin clock needs the twin's endpoints")
        return Clock(speed=float(endpoints["speed"]))
    return Clock()


def device_factories(rig: Rig, endpoints: dict[str, Any] | None, clock: Clock) -> dict[str, Any]:
    """A zero-argument constructor per device name; calling it connects the driver."""
    from shearlab.devices.force.ati_serial import ATISerialSensor
    from shearlab.devices.hexapod.pi_gcs import PIHexapod
    from shearlab.devices.robot.ur_rtde import URRobot
    from shearlab.devices.scanner.bridge_client import ScannerBridgeClient

    ep = endpoints or {}

    def pick(configured: Any, device: str, key: str) -> Any:
        if configured is not None:
            return configured
        try:
            return ep[device][key]
        except KeyError:
            raise ValueError(f"rig {rig.name!r}: no {device}.{key} configured and no twin provides one") from None

    def robot() -> Robot:
        r = URRobot(str(pick(rig.robot.host, "ur", "host")), limits=rig.robot.limits, clock=clock, name="robot")
        r.connect()
        return r

    def hexapod() -> Hexapod:
        cfg = rig.hexapod
        if cfg.driver == "pi_gcs_serial":
            return PIHexapod.serial(pick(cfg.serial, "hexapod", "serial"), cfg.baudrate, limits=cfg.limits, clock=clock, name="hexapod")
        host = pick(cfg.host, "hexapod", "host")
        port = cfg.port if cfg.host is not None else ep["hexapod"]["port"]
        return PIHexapod.tcp(host, port, limits=cfg.limits, clock=clock, name="hexapod")

    def sensor(name: str) -> Any:
        cfg = getattr(rig, name)

        def make() -> ForceSensor:
            s = ATISerialSensor(pick(cfg.serial, name, "serial"), sensor=cfg.sensor, clock=clock, baudrate=cfg.baudrate, name=name)
            s.connect()
            s.configure(averaging=cfg.averaging)
            return s

        return make

    def scanner() -> Any:
        cfg = rig.scanner
        host = pick(cfg.host if cfg else None, "scanner", "host")
        port = pick(cfg.port if cfg else None, "scanner", "port")
        s = ScannerBridgeClient(host, int(port), clock=clock, name="scanner")
        s.connect()
        return s

    return {
        "robot": robot,
        "hexapod": hexapod,
        "probe_ft": sensor("probe_ft"),
        "indenter_ft": sensor("indenter_ft"),
        "scanner": scanner,
    }


def twin_control(endpoints: dict[str, Any] | None) -> TwinControl | None:
    """A client of the twin's control endpoint, or ``None`` on real hardware."""
    if endpoints and "control" in endpoints:
        return TwinControl(endpoints["control"]["host"], endpoints["control"]["port"])
    return None


def release_protective_stop(rig: Rig, endpoints: dict[str, Any] | None, *, confirm: Callable[[str], None]) -> None:
    """Unlock the robot's protective stop, if it is in one, after ``confirm`` (an operator check).

    Runs before the robot is connected: the controller will not start the control script while stopped.
    """
    from shearlab.devices.robot.ur_rtde import release_protective_stop as release

    host = rig.robot.host if rig.robot.host is not None else (endpoints or {}).get("ur", {}).get("host")
    if host is None:
        raise ValueError(f"rig {rig.name!r}: no robot.host configured and no twin provides one")
    release(str(host), clock=clock_for(rig, endpoints), confirm=confirm,
            message=f"robot of rig {rig.name} is in a protective stop: check the probe and the phantom, then confirm to unlock")


def open_devices(rig: Rig, endpoints: dict[str, Any] | None = None, names: tuple[str, ...] = DEVICE_NAMES) -> RigDevices:
    """Connect the named devices (all by default); on failure, close what was opened and re-raise."""
    unknown = set(names) - set(DEVICE_NAMES)
    if unknown:
        raise ValueError(f"unknown devices {sorted(unknown)}; known: {DEVICE_NAMES}")
    clock = clock_for(rig, endpoints)
    factories = device_factories(rig, endpoints, clock)
    stack = ExitStack()
    opened: dict[str, Any] = {}
    try:
        for name in names:
            opened[name] = factories[name]()
            stack.callback(opened[name].close)
        control = twin_control(endpoints)
        if control is not None:
            stack.callback(control.close)
    except BaseException:
        stack.close()
        raise
    return RigDevices(rig=rig, clock=clock, control=control, _stack=stack, **opened)


def check_rig(rig: Rig, endpoints: dict[str, Any] | None = None) -> list[DeviceStatus | DeviceError]:
    """Connect to each device in turn and read its status; one entry per device, errors included."""
    clock = clock_for(rig, endpoints)
    factories = device_factories(rig, endpoints, clock)
    rows: list[DeviceStatus | DeviceError] = []
    for name in DEVICE_NAMES:
        started = time.perf_counter()
        try:
            device = factories[name]()
        except DeviceError as exc:
            rows.append(exc)
            continue
        except (OSError, ValueError) as exc:
            rows.append(DeviceError(name, f"cannot connect: {exc}"))
            continue
        try:
            status = device.status()
            if status.latency_ms <= 0:
                status = DeviceStatus(status.name, status.identity, status.state, (time.perf_counter() - started) * 1e3)
            rows.append(status)
        except DeviceError as exc:
            rows.append(exc)
        finally:
            device.close()
    return rows
