"""The rig file: which driver and address for each device, the safety limits, and the clock.

A rig file is TOML. ``rigs/twin.toml`` points at the digital twin; a lab copies it, fills in the
robot's IP, the hexapod controller's address and the serial ports, and keeps the limits.

When a ``[twin]`` table is present, shearlab starts a twin process on ``twin.host`` and takes every
device address that the file leaves out from the twin's endpoints; the clock follows the twin's speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, model_validator

from shearlab.protocols.config_files import load_toml_model

PositiveFloat = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceBox(_Strict):
    """Axis-aligned box in the robot base frame that the TCP must stay inside, metres."""

    min_m: tuple[float, float, float] = (-0.40, -0.40, 0.00)
    max_m: tuple[float, float, float] = (0.40, 0.40, 0.50)

    @model_validator(mode="after")
    def _ordered(self) -> WorkspaceBox:
        if any(lo >= hi for lo, hi in zip(self.min_m, self.max_m, strict=True)):
            raise ValueError("every component of min_m must be below max_m")
        return self

    def contains(self, xyz_m: tuple[float, float, float] | list[float]) -> bool:
        return all(lo <= v <= hi for v, lo, hi in zip(xyz_m, self.min_m, self.max_m, strict=True))


class RobotLimits(_Strict):
    # The probe presses on gel at 0.2 N; 1 N already indents the softest gel by ~2 mm.
    max_contact_force_n: PositiveFloat = 1.0
    max_speed_m_s: PositiveFloat = 0.10
    max_accel_m_s2: PositiveFloat = 0.5
    workspace: WorkspaceBox = WorkspaceBox()
    # The arm is either streaming speedL (each command feeds the watchdog) or holding still during a
    # shot; 1 s without a sign of life from the client stops it.
    watchdog_hz: PositiveFloat = 1.0


class HexapodLimits(_Strict):
    # The Nano17 saturates at 17 N in z; the protocol stops at 2 N.
    max_force_n: PositiveFloat = 2.5
    max_travel_mm: PositiveFloat = 20.0
    max_velocity_mm_s: PositiveFloat = 2.0


class RobotConfig(_Strict):
    driver: Literal["ur_rtde"] = "ur_rtde"
    host: IPvAnyAddress | str | None = None
    limits: RobotLimits = RobotLimits()


class HexapodConfig(_Strict):
    driver: Literal["pi_gcs_tcp", "pi_gcs_serial"] = "pi_gcs_tcp"
    host: str | None = None
    port: int = Field(default=50000, ge=1, le=65535)
    serial: str | None = None
    baudrate: int = Field(default=115200, gt=0)
    limits: HexapodLimits = HexapodLimits()


class ForceSensorConfig(_Strict):
    driver: Literal["ati_serial"] = "ati_serial"
    sensor: Literal["nano17", "nano43"]
    serial: str | None = None
    baudrate: int = Field(default=115200, gt=0)
    averaging: int = Field(default=1, ge=1, le=16)


class ScannerConfig(_Strict):
    driver: Literal["scanner_bridge"] = "scanner_bridge"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)


class TwinConfig(_Strict):
    """Start a digital twin on this loopback address and use it for every unaddressed device."""

    host: str = "127.0.0.5"
    speed: PositiveFloat = 50.0
    world: Path | None = None


class ClockConfig(_Strict):
    kind: Literal["real", "twin"] = "real"


class Rig(_Strict):
    name: str = "rig"
    clock: ClockConfig = ClockConfig()
    twin: TwinConfig | None = None
    robot: RobotConfig = RobotConfig()
    hexapod: HexapodConfig = HexapodConfig()
    probe_ft: ForceSensorConfig = ForceSensorConfig(sensor="nano43")
    indenter_ft: ForceSensorConfig = ForceSensorConfig(sensor="nano17")
    scanner: ScannerConfig | None = None

    @model_validator(mode="after")
    def _addresses(self) -> Rig:
        if self.clock.kind == "twin" and self.twin is None:
            raise ValueError("clock.kind = 'twin' needs a [twin] table")
        if self.twin is None:
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
                raise ValueError("without a [twin] table these addresses are required: " + ", ".join(missing))
        return self


def load_rig(path: Path | str) -> Rig:
    """Read and validate a rig file; ``ConfigFileError`` names the file and each bad field."""
    return load_toml_model(path, Rig)
