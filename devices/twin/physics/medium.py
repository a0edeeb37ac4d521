"""Mechanical maps of the image plane the shear wave travels in (SI units).

The medium is the probe's image plane through a gelatin block: depth from the probe face, lateral
from the probe centre (the axes of :class:`~shearlab.protocols.sequences.ImageGrid`). Each point
holds the dynamic shear modulus the wave sees, the Kelvin-Voigt shear viscosity and the density.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from shearlab.protocols.phantoms import Block, GelTruth, Inclusion, inclusion_mask
from shearlab.protocols.sequences import ImageGrid

# Margin around the image on which image-plane maps are built: the FD solver's absorbing layer
# lies outside the image and must see the same gel (an inclusion may straddle the image edge).
DEFAULT_PADDING_MM = 16.0


@dataclass(frozen=True)
class Medium2D:
    """Shear modulus, viscosity and density maps on a grid, each shape ``(depth, lateral)``.

    Attributes
    ----------
    mu_pa : np.ndarray
        Dynamic shear modulus, Pa.
    eta_pa_s : np.ndarray
        Kelvin-Voigt shear viscosity, Pa s.
    rho_kg_m3 : np.ndarray
        Density, kg/m^3.
    depth_m, lateral_m : np.ndarray
        Grid coordinates, shapes ``(depth,)`` and ``(lateral,)``, evenly spaced, m. Outside the
        grid the medium continues as its nearest edge value.
    """

    mu_pa: np.ndarray
    eta_pa_s: np.ndarray
    rho_kg_m3: np.ndarray
    depth_m: np.ndarray
    lateral_m: np.ndarray

    def __post_init__(self) -> None:
        shape = (self.depth_m.size, self.lateral_m.size)
        for name in ("mu_pa", "eta_pa_s", "rho_kg_m3"):
            values = getattr(self, name)
            if values.shape != shape:
                raise ValueError(f"Medium2D.{name} has shape {values.shape}, expected {shape} (depth, lateral)")
        if np.any(self.mu_pa <= 0) or np.any(self.rho_kg_m3 <= 0) or np.any(self.eta_pa_s < 0):
            raise ValueError("Medium2D needs mu > 0, rho > 0 and eta >= 0 everywhere")

    @property
    def is_homogeneous(self) -> bool:
        return all(np.ptp(values) == 0 for values in (self.mu_pa, self.eta_pa_s, self.rho_kg_m3))

    def sample(self, depth_m: np.ndarray, lateral_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest-neighbour ``(mu_pa, eta_pa_s, rho_kg_m3)`` on another grid, each ``(depth, lateral)``."""
        rows = _nearest_index(self.depth_m, depth_m)
        cols = _nearest_index(self.lateral_m, lateral_m)
        index = np.ix_(rows, cols)
        return self.mu_pa[index], self.eta_pa_s[index], self.rho_kg_m3[index]


def _nearest_index(axis_m: np.ndarray, points_m: np.ndarray) -> np.ndarray:
    if axis_m.size == 1:
        return np.zeros(np.size(points_m), dtype=np.intp)
    step = axis_m[1] - axis_m[0]
    return np.clip(np.rint((np.asarray(points_m) - axis_m[0]) / step), 0, axis_m.size - 1).astype(np.intp)


def _uniform(truth: GelTruth, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full(shape, truth.mu_dynamic_pa),
        np.full(shape, truth.eta_pa_s),
        np.full(shape, truth.density_kg_m3),
    )


def homogeneous_medium(truth: GelTruth, grid: ImageGrid) -> Medium2D:
    """One gel batch filling the image plane of ``grid``."""
    mu, eta, rho = _uniform(truth, (grid.depth_m.size, grid.lateral_m.size))
    return Medium2D(mu_pa=mu, eta_pa_s=eta, rho_kg_m3=rho, depth_m=grid.depth_m, lateral_m=grid.lateral_m)


def _padded_axis(axis_m: np.ndarray, padding_m: float) -> np.ndarray:
    step = axis_m[1] - axis_m[0]
    extra = int(np.ceil(padding_m / step))
    return axis_m[0] + step * np.arange(-extra, axis_m.size + extra)


def image_plane_medium(
    block: Block,
    truths: Mapping[str, GelTruth],
    probe_x_mm: float,
    probe_y_mm: float,
    grid: ImageGrid,
    *,
    padding_mm: float = DEFAULT_PADDING_MM,
    stiffness_factor: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Medium2D:
    """The probe's image plane through ``block`` with the probe centre at ``(probe_x_mm, probe_y_mm)``.

    The background is the block's batch; each inclusion is its own batch. Inclusions are cylinders
    along the block's y axis, so the pose's y only has to lie on the block; an inclusion centred at
    block lateral ``c`` appears at image lateral ``c - (probe_x_mm - block.x_mm)``.

    Parameters
    ----------
    truths : Mapping[str, GelTruth]
        Hidden truth per batch id (see :func:`shearlab.protocols.phantoms.cast_batch`).
    grid : ImageGrid
        The image grid; the maps cover it plus ``padding_mm`` on every side at the same spacing.
    stiffness_factor : callable, optional
        ``factor(depth_m, lateral_m) -> (depth, lateral)``: the cast gel's smooth fluctuation of
        ``mu`` about its batch value (:mod:`.heterogeneity`), in image-plane coordinates.
    """
    if not block.covers(probe_x_mm, probe_y_mm):
        raise ValueError(
            f"probe at ({probe_x_mm}, {probe_y_mm}) mm is not over block {block.name!r} "
            f"centred at ({block.x_mm}, {block.y_mm}) mm"
        )
    missing = {block.batch_id, *(inc.batch_id for inc in block.inclusions)} - set(truths)
    if missing:
        raise ValueError(f"no gel truth for batch(es) {sorted(missing)}: cast them with cast_batch first")
    depth_m = _padded_axis(grid.depth_m, padding_mm * 1e-3)
    lateral_m = _padded_axis(grid.lateral_m, padding_mm * 1e-3)
    mu, eta, rho = _uniform(truths[block.batch_id], (depth_m.size, lateral_m.size))
    block_lateral_mm = lateral_m[None, :] * 1e3 + (probe_x_mm - block.x_mm)
    for inclusion in block.inclusions:
        inside = inclusion_mask(inclusion, block_lateral_mm, depth_m[:, None] * 1e3)
        truth = truths[inclusion.batch_id]
        mu[inside] = truth.mu_dynamic_pa
        eta[inside] = truth.eta_pa_s
        rho[inside] = truth.density_kg_m3
    if stiffness_factor is not None:
        mu = mu * stiffness_factor(depth_m, lateral_m)
    return Medium2D(mu_pa=mu, eta_pa_s=eta, rho_kg_m3=rho, depth_m=depth_m, lateral_m=lateral_m)


def irregular_inclusion(
    batch_id: str,
    *,
    concentration_pct: float = 15.0,
    centre_lateral_mm: float = 0.0,
    centre_depth_mm: float = 10.0,
    radius_mm: float = 5.0,
) -> Inclusion:
    """A smooth, lopsided star-shaped blob like the paper's chicken heart.

    Outline radius ``radius_mm * (1 + sum_k a_k cos(k theta + phi_k))`` for k = 2..5 with amplitudes
    falling off with k (a smooth outline, radius within about +/-35 % of ``radius_mm``).
    """
    harmonics = ((0.18, 0.4), (0.10, 1.3), (0.05, 2.1), (0.03, 0.7))
    return Inclusion(
        concentration_pct=concentration_pct,
        batch_id=batch_id,
        shape="irregular",
        centre_lateral_mm=centre_lateral_mm,
        centre_depth_mm=centre_depth_mm,
        radius_mm=radius_mm,
        harmonics=harmonics,
    )


__all__ = [
    "DEFAULT_PADDING_MM",
    "Medium2D",
    "homogeneous_medium",
    "image_plane_medium",
    "irregular_inclusion",
]
