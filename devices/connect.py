"""Open every device of a rig file: the real drivers, pointed at the lab's hardware or at a twin, or the
simulated devices.

What stands behind a rig's devices is its backend: ``None`` for the lab's hardware (addresses from the
rig file), a running twin's ``Endpoints`` (the twin fills in the addresses the file leaves out), or a
``SimulatedRig`` (every ``driver = "sim"``). ``rig_backend`` brings one up from the rig file when the
caller has none: it starts a twin process for a ``[twin]`` table, a simulation for ``[sim]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, cast

from shearlab.devices.clock import Clock
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.interfaces import DEVICE_NAMES, DeviceName, ForceSensor, Hexapod, Robot, Scanner
from shearlab.devices.stand_in import StandIn
from shearlab.protocols.rig import Rig

if TYPE_CHECKING:
    from shearlab.devices.sim import SimulatedRig

RigBackend: TypeAlias = "Endpoints | SimulatedRig | None"


@dataclass
class RigDevices:
    """The connected devices of one rig; ``stand_in`` plays the operator on a twin or in the simulation.

    A device that was not opened raises ``LookupError`` when asked for.
    """

    rig: Rig
    clock: Clock
    stand_in: StandIn | None = None
    opened: dict[DeviceName, object] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def robot(self) -> Robot:
        return cast(Robot, self._get("robot"))

    @property
    def hexapod(self) -> Hexapod:
        return cast(Hexapod, self._get("hexapod"))

    @property
    def probe_ft(self) -> ForceSensor:
        return cast(ForceSensor, self._get("probe_ft"))

    @property
    def indenter_ft(self) -> ForceSensor:
        return cast(ForceSensor, self._get("indenter_ft"))

    @property
    def scanner(self) -> Scanner:
        return cast(Scanner, self._get("scanner"))

    def _get(self, name: DeviceName) -> object:
        if name not in self.opened:
            raise LookupError(f"rig {self.rig.name!r}: {name} was not opened (opened: {', '.join(self.opened) or 'none'})")
        return self.opened[name]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> RigDevices:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.close()
            return
        # Leaving on an error: a device that cannot be closed (its link died with the rest) must not
        # replace the error that says which device failed first.
        try:
            self.close()
        except Exception as later:
            exc.add_note(f"then, while closing the devices: {type(later).__name__}: {later}")


@contextmanager
def rig_backend(rig: Rig, given: RigBackend = None, *, world: Path | None = None) -> Iterator[RigBackend]:
    """``given``, else what the rig file asks for: a twin process for ``[twin]`` (stopped on exit), a
    simulation for ``[sim]``, nothing for the lab's hardware. ``world`` replaces the rig file's world."""
    if given is not None:
        yield given
    elif rig.sim is not None:
        from shearlab.devices.sim import SimulatedRig

        yield SimulatedRig.from_config(rig.sim if world is None else rig.sim.model_copy(update={"world": world}))
    else:
        with twin_endpoints(rig, world=world) as endpoints:
            yield endpoints


@contextmanager
def twin_endpoints(rig: Rig, *, world: Path | None = None) -> Iterator[Endpoints | None]:
    """The twin a ``[twin]`` rig file asks for, started here and stopped on exit (``world`` replaces the
    rig file's world), for one flow or for several to share; ``None`` for a rig without a twin."""
    if rig.twin is None:
        yield None
        return
    from shearlab.devices.twin_client import start_twin

    with start_twin(rig.twin.host, speed=rig.twin.speed, world=world or rig.twin.world) as twin:
        yield twin.endpoints


def clock_for(rig: Rig, backend: RigBackend) -> Clock:
    """The clock every wait goes through: real time, a twin's speed, or the simulation's own."""
    if isinstance(backend, Endpoints):
        return Clock(speed=backend.speed)
    if backend is not None:
        return backend.clock
    if rig.clock.kind != "real":
        raise ValueError(f"rig {rig.name!r}: a {rig.clock.kind} clock needs its {rig.clock.kind} running")
    return Clock()


@dataclass(frozen=True)
class DeviceFactories:
    """A zero-argument constructor per device; calling it connects the driver."""

    robot: Callable[[], Robot]
    hexapod: Callable[[], Hexapod]
    probe_ft: Callable[[], ForceSensor]
    indenter_ft: Callable[[], ForceSensor]
    scanner: Callable[[], Scanner]

    def of(self, name: DeviceName) -> Callable[[], Robot | Hexapod | ForceSensor | Scanner]:
        factory: Callable[[], Robot | Hexapod | ForceSensor | Scanner] = getattr(self, name)
        return factory


def device_factories(rig: Rig, backend: RigBackend, clock: Clock) -> DeviceFactories:
    if backend is not None and not isinstance(backend, Endpoints):
        sim = backend
        return DeviceFactories(
            robot=lambda: sim.robot(limits=rig.robot.limits),
            hexapod=lambda: sim.hexapod(limits=rig.hexapod.limits),
            probe_ft=lambda: _configured(sim.force_sensor("probe_ft"), rig.probe_ft.averaging),
            indenter_ft=lambda: _configured(sim.force_sensor("indenter_ft"), rig.indenter_ft.averaging),
            scanner=lambda: sim.scanner(),
        )
    return _driver_factories(rig, backend, clock)


def _driver_factories(rig: Rig, endpoints: Endpoints | None, clock: Clock) -> DeviceFactories:
    from shearlab.devices.force.ati_serial import ATISerialSensor
    from shearlab.devices.hexapod.pi_gcs import PIHexapod
    from shearlab.devices.robot.ur_rtde import URRobot
    from shearlab.devices.scanner.bridge_client import ScannerBridgeClient

    def twin(device: DeviceName) -> Endpoints:
        if endpoints is None:
            raise ValueError(f"rig {rig.name!r}: {device} has no address in the rig file and no twin provides one")
        return endpoints

    def robot() -> Robot:
        host = str(rig.robot.host) if rig.robot.host is not None else twin("robot").robot.host
        r = URRobot(host, limits=rig.robot.limits, clock=clock, name="robot")
        r.connect()
        return r

    def hexapod() -> Hexapod:
        cfg = rig.hexapod
        if cfg.driver == "pi_gcs_serial":
            port = cfg.serial if cfg.serial is not None else twin("hexapod").hexapod.serial
            return PIHexapod.serial(port, cfg.baudrate, limits=cfg.limits, clock=clock, name="hexapod")
        if cfg.host is not None:
            return PIHexapod.tcp(cfg.host, cfg.port, limits=cfg.limits, clock=clock, name="hexapod")
        address = twin("hexapod").hexapod
        return PIHexapod.tcp(address.host, address.port, limits=cfg.limits, clock=clock, name="hexapod")

    def sensor(name: DeviceName) -> Callable[[], ForceSensor]:
        cfg = rig.probe_ft if name == "probe_ft" else rig.indenter_ft

        def make() -> ForceSensor:
            port = cfg.serial if cfg.serial is not None else getattr(twin(name), name).serial
            s = ATISerialSensor(port, sensor=cfg.sensor, clock=clock, baudrate=cfg.baudrate, name=name)
            s.connect()
            return _configured(s, cfg.averaging)

        return make

    def scanner() -> Scanner:
        cfg = rig.scanner
        if cfg is not None and cfg.host is not None and cfg.port is not None:
            host, port = cfg.host, cfg.port
        else:
            address = twin("scanner").scanner
            host, port = address.host, address.port
        s = ScannerBridgeClient(host, port, clock=clock, name="scanner")
        s.connect()
        return s

    return DeviceFactories(robot=robot, hexapod=hexapod, probe_ft=sensor("probe_ft"), indenter_ft=sensor("indenter_ft"),
                           scanner=scanner)


def _configured(sensor: ForceSensor, averaging: int) -> ForceSensor:
    sensor.configure(averaging=averaging)
    return sensor


@contextmanager
def stand_in_for(backend: RigBackend) -> Iterator[StandIn | None]:
    """What plays the operator: the twin's control endpoint, the simulation itself, or nobody."""
    if isinstance(backend, Endpoints):
        from shearlab.devices.twin_client import TwinControl

        with TwinControl(backend.control, token=backend.token) as control:
            yield control
    else:
        yield backend


def release_protective_stop(rig: Rig, backend: RigBackend, *, confirm: Callable[[str], None]) -> None:
    """Unlock the robot's protective stop, if it is in one, after ``confirm`` (an operator check).

    Runs before the robot is connected: the controller will not start the control script while stopped.
    """
    message = f"robot of rig {rig.name} is in a protective stop: check the probe and the phantom, then confirm to unlock"
    if backend is not None and not isinstance(backend, Endpoints):
        robot = backend.robot(limits=rig.robot.limits)
        try:
            if robot.is_protective_stopped():
                confirm(message)
                robot.unlock_protective_stop()
        finally:
            robot.close()
        return
    from shearlab.devices.robot.ur_rtde import release_protective_stop as release

    if rig.robot.host is not None:
        host = str(rig.robot.host)
    elif backend is not None:
        host = backend.robot.host
    else:
        raise ValueError(f"rig {rig.name!r}: no robot.host configured and no twin provides one")
    token = backend.token if isinstance(backend, Endpoints) else None
    release(host, clock=clock_for(rig, backend), confirm=confirm, message=message, twin_token=token)


def open_devices(rig: Rig, backend: RigBackend = None, names: tuple[DeviceName, ...] = DEVICE_NAMES,
                 *, stand_in: StandIn | None = None) -> RigDevices:
    """Connect the named devices (all by default); on failure, close what was opened and re-raise.

    ``stand_in`` (from ``stand_in_for(backend)``) is handed on to the flows as ``RigDevices.stand_in``.
    """
    unknown = set(names) - set(DEVICE_NAMES)
    if unknown:
        raise ValueError(f"unknown devices {sorted(unknown)}; known: {DEVICE_NAMES}")
    clock = clock_for(rig, backend)
    factories = device_factories(rig, backend, clock)
    stack = ExitStack()
    opened: dict[DeviceName, object] = {}
    try:
        for name in names:
            device = factories.of(name)()
            opened[name] = device
            stack.callback(device.close)
    except BaseException:
        stack.close()
        raise
    return RigDevices(rig=rig, clock=clock, stand_in=stand_in, opened=opened, _stack=stack)
