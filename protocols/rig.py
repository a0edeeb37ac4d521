"""The rig file: which driver and address for each device, the safety limits, and the clock.

A rig file is TOML. ``rigs/twin.toml`` points at the digital twin; a lab copies it, fills in the
robot's IP, the hexapod controller's address and the serial ports, and keeps the limits.

When a ``[twin]`` table is present, shearlab starts a twin process on ``twin.host`` and takes every
device address that the file leaves out from the twin's endpoints; the clock follows the twin's speed.
With a ``[sim]`` table and ``driver = "sim"`` for every device (``rigs/sim.toml``), the devices are
simulated in process on the twin's models, on a virtual clock that moves only when someone waits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from shearlab.protocols.config_files import load_toml_model
from shearlab.protocols.fields import Host, LoopbackHost, ProbeForceN, ProbeSpeedMS, SafeName
from shearlab.protocols.strict_model import StrictModel

# The UR3 reaches 500 mm from its base: a workspace corner beyond that is a typo, not a box.
WorkspaceM = Annotated[float, Field(ge=-0.5, le=0.5)]
Baudrate = Annotated[int, Field(ge=300, le=921_600)]


class WorkspaceBox(StrictModel):
    """Axis-aligned box in the robot base frame that the TCP must stay inside, metres."""

    min_m: tuple[WorkspaceM, WorkspaceM, WorkspaceM] = (-0.40, -0.40, 0.00)
    max_m: tuple[WorkspaceM, WorkspaceM, WorkspaceM] = (0.40, 0.40, 0.50)

    @model_validator(mode="after")
    def _ordered(self) -> WorkspaceBox:
        if any(lo >= hi for lo, hi in zip(self.min_m, self.max_m, strict=True)):
            raise ValueError("every component of min_m must be below max_m")
        return self

    def contains(self, xyz_m: tuple[float, float, float] | list[float]) -> bool:
        return all(lo <= v <= hi for v, lo, hi in zip(xyz_m, self.min_m, self.max_m, strict=True))


class RobotLimits(StrictModel):
    # The probe presses on gel at 0.2 N; 1 N already indents the softest gel by ~2 mm. At most the
    # Nano43's range: a limit the sensor cannot see is no limit.
    max_contact_force_n: ProbeForceN = 1.0
    max_speed_m_s: ProbeSpeedMS = 0.10
    # URScript's default linear acceleration is 1.2 m/s^2; 5 m/s^2 whips the probe's cable.
    max_accel_m_s2: float = Field(default=0.5, gt=0, le=5.0)
    workspace: WorkspaceBox = WorkspaceBox()
    # The arm is either streaming speedL (each command feeds the watchdog) or holding still during a
    # shot; 1 s without a sign of life from the client stops it. Below 0.5 Hz the arm would run 2 s
    # unwatched; above the CB3's 125 Hz RTDE rate the client cannot feed it.
    watchdog_hz: float = Field(default=1.0, ge=0.5, le=125)


class HexapodLimits(StrictModel):
    # The Nano17 saturates at 17 N in z; the protocol stops at 2 N.
    max_force_n: float = Field(default=2.5, gt=0, le=17)
    # The H-820 travels +/-50 mm in x and y, +/-25 mm in z.
    max_travel_mm: float = Field(default=20.0, gt=0, le=50)
    # The H-820's top speed is 20 mm/s.
    max_velocity_mm_s: float = Field(default=2.0, gt=0, le=20)


class RobotConfig(StrictModel):
    driver: Literal["ur_rtde", "sim"] = "ur_rtde"
    host: Host | None = None
    limits: RobotLimits = RobotLimits()


class HexapodConfig(StrictModel):
    driver: Literal["pi_gcs_tcp", "pi_gcs_serial", "sim"] = "pi_gcs_tcp"
    host: Host | None = None
    port: int = Field(default=50000, ge=1, le=65535)
    serial: str | None = Field(default=None, min_length=1)
    baudrate: Baudrate = 115200
    limits: HexapodLimits = HexapodLimits()


class ForceSensorConfig(StrictModel):
    driver: Literal["ati_serial", "sim"] = "ati_serial"
    sensor: Literal["nano17", "nano43"]
    serial: str | None = Field(default=None, min_length=1)
    baudrate: Baudrate = 115200
    averaging: int = Field(default=1, ge=1, le=16)


class ScannerConfig(StrictModel):
    driver: Literal["scanner_bridge", "sim"] = "scanner_bridge"
    host: Host | None = None
    port: int | None = Field(default=None, ge=1, le=65535)


class TwinConfig(StrictModel):
    """Start a digital twin on this loopback address and use it for every unaddressed device."""

    host: LoopbackHost = "127.0.0.5"
    # Virtual seconds per wall second; past ~1000 no control loop closes over the wire.
    speed: float = Field(default=50.0, gt=0, le=1000)
    world: Path | None = None


class SimConfig(StrictModel):
    """Simulate every device in process on the twin's models (``shearlab.devices.sim``)."""

    world: Path | None = None
    seed: int = Field(default=0, ge=0)


class ClockConfig(StrictModel):
    kind: Literal["real", "twin", "sim"] = "real"


class Rig(StrictModel):
    name: SafeName = "rig"
    clock: ClockConfig = ClockConfig()
    twin: TwinConfig | None = None
    sim: SimConfig | None = None
    robot: RobotConfig = RobotConfig()
    hexapod: HexapodConfig = HexapodConfig()
    probe_ft: ForceSensorConfig = ForceSensorConfig(sensor="nano43")
    indenter_ft: ForceSensorConfig = ForceSensorConfig(sensor="nano17")
    scanner: ScannerConfig | None = None

    def simulated(self) -> list[str]:
        """The devices whose driver is ``sim``."""
        configs = {"robot": self.robot, "hexapod": self.hexapod, "probe_ft": self.probe_ft,
                   "indenter_ft": self.indenter_ft, "scanner": self.scanner}
        return [name for name, config in configs.items() if config is not None and config.driver == "sim"]

    @model_validator(mode="after")
    def _addresses(self) -> Rig:
        if self.clock.kind == "twin" and self.twin is None:
            raise ValueError("clock.kind = 'twin' needs a [twin] table")
        if (self.clock.kind == "sim") != (self.sim is not None):
            raise ValueError("a [sim] table and clock.kind = 'sim' go together")
        simulated = self.simulated()
        if self.sim is not None:
            # A rig without a [scanner] table takes the simulation's scanner, as a twin rig takes the twin's.
            listed = {"robot", "hexapod", "probe_ft", "indenter_ft"} | ({"scanner"} if self.scanner is not None else set())
            real = listed - set(simulated)
            if self.twin is not None or real:
                raise ValueError("with a [sim] table every device is simulated: set driver = 'sim' for "
                                 + ", ".join(sorted(real) or ["every device"]) + " and drop [twin]")
        elif simulated:
            raise ValueError(f"driver = 'sim' ({', '.join(simulated)}) needs a [sim] table and clock.kind = 'sim'")
        if self.twin is None and self.sim is None:
            missing = []
            if self.robot.host is None:
                missing.append("robot.host")
            if self.hexapod.driver == "pi_gcs_tcp" and self.hexapod.host is None:
                missing.append("hexapod.host")
            if self.hexapod.driver == "pi_gcs_serial" and self.hexapod.serial is None:
                missing.append("hexapod.serial")
            for name in ("probe_ft", "indenter_ft"):
                if getattr(self, name).serial is None:
                    missing.append(f"{name}.serial")
            if missing:
                raise ValueError("without a [twin] or [sim] table these addresses are required: " + ", ".join(missing))
        return self


def load_rig(path: Path | str) -> Rig:
    """Read and validate a rig file; ``ConfigFileError`` names the file and each bad field."""
    return load_toml_model(path, Rig)
