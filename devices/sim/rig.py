"""Every device of a rig in this process: the twin's bench behind the device interfaces.

``SimulatedRig`` is what a rig file with ``[sim]`` (every ``driver = "sim"``) connects to: one world, one
arm, one hexapod, two force sensors and one scanner on a ``SimClock``, shared by every connection made
to it, as the lab's devices are shared by the programs that connect to them. It is also the
simulation's ``StandIn``: it places phantoms, reports the world's true state and injects every fault
the twin's control endpoint offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shearlab.devices.interfaces import DeviceName
from shearlab.devices.sim.clock import SimClock
from shearlab.devices.sim.force import SensorLink, SimForceSensor
from shearlab.devices.sim.hexapod import SimHexapod
from shearlab.devices.sim.robot import RtdeLink, SimRobot
from shearlab.devices.sim.scanner import ScannerLink, SimScanner
from shearlab.devices.stand_in import Fault, WorldState
from shearlab.devices.twin.bench import Bench, build_bench
from shearlab.devices.twin.world_config import WorldConfig, load_world
from shearlab.protocols.phantoms import Cylinder
from shearlab.protocols.rig import HexapodLimits, RobotLimits, SimConfig


@dataclass
class _Links:
    """What stands between each simulated device and its driver: where link faults are injected."""

    rtde: RtdeLink = field(default_factory=RtdeLink)
    sensors: dict[DeviceName, SensorLink] = field(default_factory=lambda: {"probe_ft": SensorLink(), "indenter_ft": SensorLink()})
    scanner: ScannerLink = field(default_factory=ScannerLink)


class SimulatedRig:
    """The devices of one simulated rig; a ``StandIn``.

    Parameters
    ----------
    world
        The phantoms, mounts and limits (default: the shipped world, as the twin's).
    seed
        Seeds the sensors' noise and the scanner's speckle, as the twin's ``seed`` does.
    """

    name = "simulation"

    def __init__(self, world: WorldConfig | None = None, *, seed: int = 0) -> None:
        self.clock = SimClock()
        self.bench: Bench = build_bench(self.clock, world, seed=seed)
        self._links = _Links()

    @classmethod
    def from_config(cls, config: SimConfig) -> SimulatedRig:
        return cls(load_world(config.world), seed=config.seed)

    # -- devices ---------------------------------------------------------------------------------

    def robot(self, *, limits: RobotLimits, name: str = "robot") -> SimRobot:
        return SimRobot(self.bench.robot, self.clock, self._links.rtde, limits=limits, name=name)

    def hexapod(self, *, limits: HexapodLimits, name: str = "hexapod") -> SimHexapod:
        return SimHexapod(self.bench.hexapod, self.clock, limits=limits, name=name)

    def force_sensor(self, name: DeviceName) -> SimForceSensor:
        model = {"probe_ft": self.bench.probe_ft, "indenter_ft": self.bench.indenter_ft}[name]
        return SimForceSensor(model, self.clock, self._links.sensors[name], name=name)

    def scanner(self, *, name: str = "scanner") -> SimScanner:
        return SimScanner(self.bench.scanner, self.clock, self._links.scanner, name=name)

    # -- StandIn ---------------------------------------------------------------------------------

    def place_cylinder(self, cylinder: Cylinder) -> None:
        self.bench.place_cylinder(cylinder)

    def remove_cylinder(self) -> None:
        self.bench.remove_cylinder()

    def state(self) -> WorldState:
        return self.bench.state()

    def inject_fault(self, fault: Fault) -> None:
        """Every fault of ``stand_in.FAULTS``: the devices' own through the bench, link faults here."""
        if self.bench.inject_device_fault(fault):
            return
        match fault.device, fault.kind:
            case "robot", "drop_rtde":
                self._links.rtde.stalled_until = self.clock.now() + fault.duration_s
            case "scanner", "drop":
                self._links.scanner.cut = True
            case sensor, "unplug":
                self._links.sensors[sensor].plugged = False
            case sensor, "replug":
                self._links.sensors[sensor].plugged = True
            case sensor, "garbage":
                self._links.sensors[sensor].garbage_bytes = fault.n_bytes
            case sensor, "drop_records":
                model = self.bench.probe_ft if sensor == "probe_ft" else self.bench.indenter_ft
                model.drop_records(fault.n)
