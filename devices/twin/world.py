"""The physical world of the twin: phantoms on the table, the probe touching them, the cylinder
under the indentation plate, and the hidden truth of every cast batch.

Device servers are protocol adapters; they ask the world what their sensor would read. Every
quantity is evaluated at the present virtual time of the twin's clock, from the robot's and the
hexapod's motion models.
"""

from __future__ import annotations

import math
import threading
import zlib
from dataclasses import dataclass

import numpy as np

from shearlab.devices.twin.world_config import WorldConfig
from shearlab.protocols.phantoms import Block, Cylinder, GelTruth, cast_batch

POISSON_RATIO = 0.5


@dataclass(frozen=True)
class ProbeContact:
    """Where the probe face is relative to the phantom below it."""

    block: Block | None
    indentation_mm: float
    force_n: float

    @property
    def coupled(self) -> bool:
        return self.block is not None and self.indentation_mm > 0


class World:
    """Shared state of one twin process; thread-safe, queried by the device servers."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._truths: dict[str, GelTruth] = {}
        self._cylinder: Cylinder | None = None
        self._cylinder_length_mm = 0.0
        self._robot_pose = None
        self._plate_z = None
        for block in config.blocks:
            self.truth(block.batch_id, block.concentration_pct)
            for inc in block.inclusions:
                self.truth(inc.batch_id, inc.concentration_pct)

    # -- wiring ---------------------------------------------------------------------------------
    def attach(self, *, robot_pose, plate_z_mm) -> None:
        """Connect the motion models: ``robot_pose()`` -> (6,) m/rad, ``plate_z_mm()`` -> float."""
        self._robot_pose = robot_pose
        self._plate_z = plate_z_mm

    # -- phantoms -------------------------------------------------------------------------------
    def truth(self, batch_id: str, concentration_pct: float) -> GelTruth:
        """True properties of a cast batch (drawn once, reproducibly)."""
        with self._lock:
            if batch_id not in self._truths:
                self._truths[batch_id] = cast_batch(batch_id, concentration_pct)
            return self._truths[batch_id]

    @property
    def truths(self) -> dict[str, GelTruth]:
        with self._lock:
            return dict(self._truths)

    def block_under(self, x_mm: float, y_mm: float) -> Block | None:
        for block in self.config.blocks:
            if block.covers(x_mm, y_mm):
                return block
        return None

    # -- probe contact --------------------------------------------------------------------------
    def probe_contact(self, pose: np.ndarray) -> ProbeContact:
        """Flat rigid punch on an elastic half-space: F = 2 E* a delta, E* = E / (1 - nu^2), with
        ``a`` the radius of a circle of the probe face's area. The quasi-static modulus applies:
        the probe presses slowly."""
        x_mm, y_mm, z_mm = (float(v) * 1e3 for v in pose[:3])
        block = self.block_under(x_mm, y_mm)
        if block is None:
            return ProbeContact(None, 0.0, 0.0)
        delta_mm = block.top_z_mm(self.config.table_z_mm) - z_mm
        if delta_mm <= 0:
            return ProbeContact(block, delta_mm, 0.0)
        probe = self.config.probe
        a_m = math.sqrt(probe.face_lateral_mm * probe.face_elevation_mm * 1e-6 / math.pi)
        e_star = self.truth(block.batch_id, block.concentration_pct).e_static_pa / (1 - POISSON_RATIO**2)
        return ProbeContact(block, delta_mm, 2.0 * e_star * a_m * delta_mm * 1e-3)

    def probe_contact_force_n(self, pose: np.ndarray) -> float:
        return self.probe_contact(pose).force_n

    def current_probe_contact(self) -> ProbeContact:
        return self.probe_contact(np.asarray(self._robot_pose()))

    def probe_wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """Nano43 load in its frame: +Fz is the gel pushing the probe up, plus the probe's weight."""
        force = self.current_probe_contact().force_n
        fz = force + self.config.probe.weight_n
        return np.array([0.0, 0.0, fz]), np.zeros(3)

    # -- indentation ----------------------------------------------------------------------------
    def place_cylinder(self, cylinder: Cylinder | None) -> None:
        """Operator step: put a cylinder under the plate (``None`` removes it)."""
        with self._lock:
            self._cylinder = cylinder
            if cylinder is not None:
                # Each cut cylinder is a little longer or shorter than nominal.
                rng = np.random.default_rng(zlib.crc32(f"{cylinder.batch_id}/{cylinder.index}".encode()))
                spread = self.config.indentation.length_spread_mm
                self._cylinder_length_mm = cylinder.length_mm + float(np.clip(rng.normal(0, spread), -3 * spread, 3 * spread))
        if cylinder is not None:
            self.truth(cylinder.batch_id, cylinder.concentration_pct)

    @property
    def cylinder(self) -> Cylinder | None:
        return self._cylinder

    def indentation_force_n(self, plate_z_mm: float) -> float:
        """Unconfined compression of the cylinder under the plate at hexapod Z = ``plate_z_mm``."""
        cyl = self._cylinder
        if cyl is None:
            return 0.0
        rig = self.config.indentation
        top_mm = -rig.clearance_mm + (self._cylinder_length_mm - cyl.length_mm)
        delta_mm = top_mm - plate_z_mm
        if delta_mm <= 0:
            return 0.0
        strain = delta_mm / self._cylinder_length_mm
        toe = rig.toe_strain
        effective = strain - toe * (1.0 - math.exp(-strain / toe))
        e_pa = self.truth(cyl.batch_id, cyl.concentration_pct).e_static_pa
        return e_pa * math.pi * (cyl.radius_mm * 1e-3) ** 2 * effective

    def indenter_wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """Nano17 load: +Fz is the cylinder pushing the plate up, plus the plate's weight."""
        fz = self.indentation_force_n(float(self._plate_z())) + self.config.indentation.plate_weight_n
        return np.array([0.0, 0.0, fz]), np.zeros(3)
