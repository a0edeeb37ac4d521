"""The twin's world file: what stands on the table, the probe on the flange, the indentation rig.

A world file is TOML validated by these models; ``worlds/default.toml`` ships with shearlab and
holds one block per gelatin concentration plus the inclusion phantoms of the paper.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shearlab.devices.twin.realism import Realism
from shearlab.protocols.config_files import load_toml_model
from shearlab.protocols.phantoms import Block
from shearlab.protocols.strict_model import StrictModel

DEFAULT_WORLD = Path(__file__).with_name("worlds") / "default.toml"



class ProbeMount(StrictModel):
    """The probe on the Nano43: its face is the robot's TCP."""

    face_lateral_mm: float = 37.12  # 128 elements x 0.29 mm
    face_elevation_mm: float = 10.0
    # Probe and holder weight hanging below the sensor; a bias removes it.
    weight_n: float = 1.6
    # Gel must be compressed at least this much for acoustic coupling.
    coupling_depth_mm: float = 0.01


class IndentationRig(StrictModel):
    """Hexapod-driven plate above a cylinder resting on a fixed base.

    Hexapod Z is the plate height; at Z = 0 the plate clears a nominal 40 mm cylinder by
    ``clearance_mm``. The plate moves down (negative Z) into the cylinder.
    """

    clearance_mm: float = 3.0
    # Cast cylinders are not perfectly flat: contact closes over the first fraction of a percent of
    # strain (the toe region), then the response is linear.
    toe_strain: float = 0.004
    length_spread_mm: float = 0.15
    plate_weight_n: float = 0.35


class WorldConfig(StrictModel):
    table_z_mm: float = 0.0
    probe: ProbeMount = ProbeMount()
    indentation: IndentationRig = IndentationRig()
    # The UR's protective stop threshold for the probe pressing on a phantom (twin safety config).
    robot_contact_limit_n: float = Field(default=5.0, gt=0)
    # Echo SNR at the push focus with full coupling and mean scatterer density. A beamformed single
    # plane-wave image reaches 34 dB at 13 mm (IEEE TUFFC 59(6):1201, 2012, Table V, PMC3415797); with
    # the round-trip attenuation the field of view then spans SPEC's 20-40 dB from 20 mm to the face.
    scanner_snr_db: float = Field(default=34.0, gt=0)
    realism: Realism = Realism()
    blocks: tuple[Block, ...] = ()


def load_world(path: Path | str | None = None) -> WorldConfig:
    """Read a world file; ``None`` gives the shipped default world."""
    return load_toml_model(path or DEFAULT_WORLD, WorldConfig)
