"""The twin's rig in one process: the world, the arm's and the hexapod's motion, both force sensors'
measurement and the scanner, wired together as in the lab.

The twin process (``serve.py``) serves a ``Bench`` over the devices' wire protocols; the in-process
simulation (``shearlab.devices.sim``) drives one through the device interfaces. Either way the bench is
also the ``StandIn``'s body: it places cylinders, reports the world's true state and takes the faults
that live in the devices themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.stand_in import Fault, WorldState
from shearlab.devices.twin.ft_sensor_model import FTSensorModel
from shearlab.devices.twin.hexapod_model import HexapodModel
from shearlab.devices.twin.robot_model import RobotModel
from shearlab.devices.twin.scanner_acquisition import TwinScannerBackend
from shearlab.devices.twin.scanner_model import ScannerModel
from shearlab.devices.twin.world import World
from shearlab.devices.twin.world_config import WorldConfig, load_world
from shearlab.protocols.phantoms import Cylinder

# Probe parked above the tallest phantom, pointing down (rotation pi about x).
HOME_POSE = np.array([0.0, 0.20, 0.25, np.pi, 0.0, 0.0])
# The Nano17 saturates at 17 N: the rig's hard stop halts the hexapod well before.
INDENTER_HARD_LIMIT_N = 10.0


@dataclass
class Bench:
    clock: Clock
    world: World
    robot: RobotModel
    hexapod: HexapodModel
    probe_ft: FTSensorModel
    indenter_ft: FTSensorModel
    scanner: ScannerModel

    def place_cylinder(self, cylinder: Cylinder) -> None:
        self.world.place_cylinder(cylinder)

    def remove_cylinder(self) -> None:
        self.world.place_cylinder(None)

    def state(self) -> WorldState:
        contact = self.world.current_probe_contact()
        plate_z_mm = self.hexapod.position_mm()["Z"]
        pose = self.robot.pose()
        return WorldState(
            time_s=self.clock.now(),
            robot_pose=(float(pose[0]), float(pose[1]), float(pose[2]), float(pose[3]), float(pose[4]), float(pose[5])),
            protective_stopped=self.robot.is_protective_stopped(),
            protective_stop_reason=self.robot.protective_stop_reason(),
            probe_force_n=contact.force_n,
            probe_indentation_mm=contact.indentation_mm,
            probe_over=contact.block.name if contact.block else None,
            plate_z_mm=plate_z_mm,
            indenter_force_n=float(self.world.indentation_force_n(plate_z_mm)),
            cylinder=self.world.cylinder,
        )

    def inject_device_fault(self, fault: Fault) -> bool:
        """Apply ``fault`` if the device itself has it (a stop, a controller error, a stall, a scanner
        fault); ``False`` for a fault of the link or of a sensor's record stream, which whoever serves
        that device applies (the twin's servers, or the simulated drivers)."""
        match fault.device, fault.kind:
            case "robot", "protective_stop":
                self.robot.trigger_protective_stop("injected")
            case "hexapod", "error":
                assert fault.code is not None
                self.hexapod.inject_error(fault.code)
            case "hexapod", "stall":
                self.hexapod.stall_axis(fault.axis)
            case "scanner", "fault":
                self.scanner.inject_fault(fault.message)
            case _:
                return False
        return True


def build_bench(clock: Clock, world: WorldConfig | None = None, *, seed: int = 0) -> Bench:
    """The default world (or ``world``) with the arm parked at ``HOME_POSE``, the probe's Nano43 on the
    arm, the Nano17 under the hexapod's plate (halted by the rig's hard stop) and the scanner imaging
    what lies under the probe."""
    world_state = World(world or load_world())
    robot = RobotModel(
        clock,
        contact_force_n=world_state.probe_contact_force_n,
        force_limit_n=world_state.config.robot_contact_limit_n,
        initial_pose=HOME_POSE.copy(),
    )
    hexapod = HexapodModel(clock)
    world_state.attach(robot_pose=robot.pose, plate_z_mm=lambda: hexapod.position_mm()["Z"])
    hexapod.set_motion_guard(lambda pos: bool(world_state.indentation_force_n(pos["Z"]) < INDENTER_HARD_LIMIT_N))
    backend = TwinScannerBackend(world_state, robot_pose=robot.pose, seed=seed)
    return Bench(
        clock=clock,
        world=world_state,
        robot=robot,
        hexapod=hexapod,
        probe_ft=FTSensorModel("nano43", world_state.probe_wrench, seed=seed + 1),
        indenter_ft=FTSensorModel("nano17", world_state.indenter_wrench, seed=seed + 2),
        scanner=ScannerModel(backend.acquire, clock),
    )
