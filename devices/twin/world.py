"""The physical world of the twin: phantoms on the table, the probe touching them, the cylinder
under the indentation plate, and the hidden truth of every cast batch and of every sample cast from it.

Device servers are protocol adapters; they ask the world what their sensor would read. Every
quantity is evaluated at the present virtual time of the twin's clock, from the robot's and the
hexapod's motion models. What varies in a real lab (``WorldConfig.realism``) is drawn here, once and
reproducibly from names: each cast sample's modulus, each batch's attenuation, each block's stiffness
and scatterer-density fields, the coupling at each probe position.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from shearlab.devices.twin.physics.heterogeneity import BlockField
from shearlab.devices.twin.physics.medium import Medium2D, image_plane_medium
from shearlab.devices.twin.world_config import WorldConfig
from shearlab.protocols.phantoms import CONCENTRATIONS_PCT, POISSON_RATIO, Block, Cylinder, GelTruth, cast_batch, name_seed
from shearlab.protocols.sequences import ImageGrid

# Draws of a sample's deviation are clipped at this many sigmas (no cast is wildly off).
_CLIP_SIGMAS = 2.5
# Depth of a block's top layer that its fields cover: the image (20 mm) and the solvers' padding.
_FIELD_DEPTH_MM = 40.0
# Probe positions closer than this share their coupling and clutter (as they share speckle), mm.
POSITION_CELL_MM = 0.1


def _unattached() -> NoReturn:
    raise RuntimeError("the world has no motion models yet: call attach() first")


@dataclass(frozen=True)
class PositionDraws:
    """What a probe position on a block brings to every shot taken there.

    ``coupling`` scales the intensity through the gel layer (both ways for echoes); ``bubble`` scales
    the push force only (an air bubble under the 11-element push aperture); ``dither_um``/``dither_hz``
    are the amplitude and frequency of the robot's servo dither; ``seed`` seeds the position's speckle
    and clutter.
    """

    coupling: float
    bubble: float
    dither_um: float
    dither_hz: float
    seed: int


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
        # Drawing a block's fields takes a moment: a lock of their own keeps sensor reads flowing.
        self._fields_lock = threading.Lock()
        self._fields: dict[str, tuple[BlockField, BlockField]] = {}
        self._cylinder: Cylinder | None = None
        self._cylinder_truth: GelTruth | None = None
        self._cylinder_length_mm = 0.0
        self._robot_pose: Callable[[], np.ndarray] = _unattached
        self._plate_z: Callable[[], float] = _unattached
        for block in config.blocks:
            self.truth(block.batch_id, block.concentration_pct)
            for inc in block.inclusions:
                self.truth(inc.batch_id, inc.concentration_pct)

    # -- wiring ---------------------------------------------------------------------------------
    def attach(self, *, robot_pose: Callable[[], np.ndarray], plate_z_mm: Callable[[], float]) -> None:
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

    def sample_truth(self, batch_id: str, concentration_pct: float, sample: str) -> GelTruth:
        """True properties of one sample cast from a batch (``sample`` names it, e.g. ``"cylinder:3"``)."""
        truth = self.truth(batch_id, concentration_pct)
        realism = self.config.realism
        if not realism.enabled:
            return truth
        rng = np.random.default_rng(name_seed(f"{batch_id}/{sample}"))
        deviation = float(np.clip(rng.standard_normal(), -_CLIP_SIGMAS, _CLIP_SIGMAS))
        return dataclasses.replace(truth, e_static_pa=truth.e_static_pa * (1.0 + realism.gel.sample_modulus_cv * deviation))

    def block_truths(self, block: Block) -> dict[str, GelTruth]:
        """The block's own samples of its background and inclusion batches, by batch id."""
        batches = {block.batch_id: block.concentration_pct, **{i.batch_id: i.concentration_pct for i in block.inclusions}}
        return {batch: self.sample_truth(batch, conc, f"block:{block.name}") for batch, conc in batches.items()}

    def attenuation_db_cm_mhz(self, batch_id: str, concentration_pct: float) -> float | None:
        """One-way attenuation of a batch, dB/cm/MHz; ``None`` when realism is off (the nominal gel)."""
        gel = self.config.realism.gel
        if not self.config.realism.enabled:
            return None
        lo, hi = min(CONCENTRATIONS_PCT), max(CONCENTRATIONS_PCT)
        slope = gel.attenuation_rise_over_range / (hi - lo)
        at_lowest = gel.attenuation_db_cm_mhz_at_10pct / (1.0 + slope * (10.0 - lo))
        nominal = at_lowest * (1.0 + slope * (concentration_pct - lo))
        rng = np.random.default_rng(name_seed(f"{batch_id}/attenuation"))
        deviation = float(np.clip(rng.standard_normal(), -_CLIP_SIGMAS, _CLIP_SIGMAS))
        return nominal * (1.0 + gel.attenuation_batch_cv * deviation)

    def _block_fields(self, block: Block) -> tuple[BlockField, BlockField]:
        """Stiffness and scatterer-density fields of a block, drawn on first use."""
        with self._fields_lock:
            if block.name not in self._fields:
                gel = self.config.realism.gel
                centre_mm = (block.x_mm, block.y_mm)
                self._fields[block.name] = (
                    BlockField.draw(f"{block.name}/stiffness", correlation_mm=gel.stiffness_correlation_mm,
                                    cv=gel.stiffness_cv, centre_mm=centre_mm, size_mm=block.size_mm, depth_mm=_FIELD_DEPTH_MM),
                    BlockField.draw(f"{block.name}/scatterers", correlation_mm=gel.scatterer_correlation_mm,
                                    cv=gel.scatterer_density_cv, centre_mm=centre_mm, size_mm=block.size_mm,
                                    depth_mm=_FIELD_DEPTH_MM),
                )
            return self._fields[block.name]

    def image_plane(self, block: Block, probe_x_mm: float, probe_y_mm: float, grid: ImageGrid) -> Medium2D:
        """The gel under a probe centred at ``(probe_x_mm, probe_y_mm)``: the block's samples of its
        batches and, with realism, its stiffness fluctuations."""
        factor = None
        if self.config.realism.enabled:
            stiffness = self._block_fields(block)[0]

            def factor(depth_m: np.ndarray, lateral_m: np.ndarray) -> np.ndarray:
                return stiffness.image_plane(probe_x_mm, probe_y_mm, depth_m, lateral_m)

        return image_plane_medium(block, self.block_truths(block), probe_x_mm, probe_y_mm, grid, stiffness_factor=factor)

    def scatterer_density(self, block: Block, probe_x_mm: float, probe_y_mm: float, grid: ImageGrid) -> np.ndarray | None:
        """Relative scatterer density on the image plane, ``(depth, lateral)``; ``None`` without realism."""
        if not self.config.realism.enabled:
            return None
        return self._block_fields(block)[1].image_plane(probe_x_mm, probe_y_mm, grid.depth_m, grid.lateral_m)

    def position_draws(self, block: Block, probe_x_mm: float, probe_y_mm: float) -> PositionDraws:
        """Coupling, bubble, dither and speckle seed of a probe position (the same every time it is visited)."""
        cell = (round(probe_x_mm / POSITION_CELL_MM), round(probe_y_mm / POSITION_CELL_MM))
        seed = zlib.crc32(f"{block.name}/{cell}".encode())
        realism = self.config.realism
        if not realism.enabled:
            return PositionDraws(coupling=1.0, bubble=1.0, dither_um=0.0, dither_hz=0.0, seed=seed)
        rng = np.random.default_rng(name_seed(f"{block.name}/{cell}/position"))
        push, echo = realism.push, realism.echo
        sigma = math.sqrt(math.log1p(push.coupling_intensity_cv**2))
        coupling = math.exp(sigma * rng.standard_normal() - 0.5 * sigma * sigma)
        bubble = 1.0
        if rng.random() < push.bubble_probability:
            uncoupled = int(rng.integers(1, 3))
            bubble = ((11 - uncoupled) / 11) ** 2
        return PositionDraws(coupling=coupling, bubble=bubble, dither_um=float(rng.uniform(*echo.dither_um)),
                             dither_hz=float(rng.uniform(*echo.dither_hz)), seed=seed)

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
        e_star = self.block_truths(block)[block.batch_id].e_static_pa / (1 - POISSON_RATIO**2)
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
        truth = None
        if cylinder is not None:
            truth = self.sample_truth(cylinder.batch_id, cylinder.concentration_pct, f"cylinder:{cylinder.index}")
        with self._lock:
            self._cylinder = cylinder
            self._cylinder_truth = truth
            if cylinder is not None:
                # Each cut cylinder is a little longer or shorter than nominal.
                rng = np.random.default_rng(zlib.crc32(f"{cylinder.batch_id}/{cylinder.index}".encode()))
                spread = self.config.indentation.length_spread_mm
                self._cylinder_length_mm = cylinder.length_mm + float(np.clip(rng.normal(0, spread), -3 * spread, 3 * spread))

    @property
    def cylinder(self) -> Cylinder | None:
        return self._cylinder

    def indentation_force_n(self, plate_z_mm: float | np.ndarray) -> float | np.ndarray:
        """Unconfined compression of the cylinder under the plate at hexapod Z = ``plate_z_mm``
        (a float, or an array of plate positions for a whole run at once)."""
        cyl, truth = self._cylinder, self._cylinder_truth
        if cyl is None or truth is None:
            return 0.0 * np.asarray(plate_z_mm, dtype=float) if np.ndim(plate_z_mm) else 0.0
        rig = self.config.indentation
        top_mm = -rig.clearance_mm + (self._cylinder_length_mm - cyl.length_mm)
        strain = np.maximum(top_mm - np.asarray(plate_z_mm, dtype=float), 0.0) / self._cylinder_length_mm
        toe = rig.toe_strain
        effective = strain - toe * (1.0 - np.exp(-strain / toe))
        force = truth.e_static_pa * math.pi * (cyl.radius_mm * 1e-3) ** 2 * effective
        return force if np.ndim(plate_z_mm) else float(force)

    def indenter_wrench(self) -> tuple[np.ndarray, np.ndarray]:
        """Nano17 load: +Fz is the cylinder pushing the plate up, plus the plate's weight."""
        fz = self.indentation_force_n(float(self._plate_z())) + self.config.indentation.plate_weight_n
        return np.array([0.0, 0.0, fz]), np.zeros(3)
