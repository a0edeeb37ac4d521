"""Casting is not perfect: smooth random fluctuations of a gel's stiffness and scatterer density.

Model. Within one cast block the shear modulus is ``mu(x, y, z) = mu_block exp(s g - s^2 / 2)`` and the
scatterer density (echo power per unit volume) ``n(x, y, z) = exp(s_n g_n - s_n^2 / 2)``, with ``g``,
``g_n`` independent unit-variance Gaussian random fields of Gaussian covariance ``exp(-r^2 / (2 l^2))``:
unit mean, coefficient of variation ``sqrt(exp(s^2) - 1)`` (``~s`` when small). Each field is drawn once
per block, reproducibly from the block's name, on a grid over the block's top layer (the depths a probe
images), and sampled on the probe's image plane wherever the probe stands.

The finite-difference solver carries the waves through the fluctuating gel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from shearlab.protocols.phantoms import name_seed

# Field grid spacing as a fraction of the correlation length: linear interpolation of a Gaussian
# covariance field sampled at l / 3 is within ~1 % of the field's own standard deviation.
_SAMPLES_PER_CORRELATION_LENGTH = 3.0


def lognormal_field(shape: tuple[int, ...], *, spacing_mm: float, correlation_mm: float, cv: float,
                    seed: int) -> np.ndarray:
    """A unit-mean lognormal random field with Gaussian covariance on a regular grid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape (any number of axes).
    spacing_mm : float
        Grid spacing, the same on every axis, mm.
    correlation_mm : float
        Correlation length ``l`` of the underlying Gaussian field, mm.
    cv : float
        Coefficient of variation of the field (its standard deviation over its mean of 1).
    seed : int
        Seed of the white noise.

    Returns
    -------
    np.ndarray
        float32 field of ``shape``, mean 1 (exactly 1 for ``cv == 0``).
    """
    if cv < 0 or correlation_mm <= 0 or spacing_mm <= 0:
        raise ValueError("cv must be >= 0 and correlation_mm, spacing_mm > 0")
    if cv == 0:
        return np.ones(shape, dtype=np.float32)
    white = np.random.default_rng(seed).standard_normal(shape)
    # White noise filtered by a Gaussian of sigma l / sqrt(2) has the covariance exp(-r^2 / (2 l^2)).
    smooth = gaussian_filter(white, correlation_mm / math.sqrt(2.0) / spacing_mm, mode="wrap")
    g = (smooth - smooth.mean()) / smooth.std()
    s = math.sqrt(math.log1p(cv**2))
    return np.exp(s * g - 0.5 * s * s).astype(np.float32)


@dataclass(frozen=True)
class BlockField:
    """A field over a block's top layer: values on a grid in block coordinates.

    Attributes
    ----------
    values : np.ndarray
        float32, shape ``(x, y, depth)``.
    origin_mm : tuple of float
        Base-frame ``(x, y)`` of the grid's first node and the depth of its first layer (0: the top).
    spacing_mm : float
        Grid spacing on every axis, mm.
    """

    values: np.ndarray
    origin_mm: tuple[float, float, float]
    spacing_mm: float

    @classmethod
    def draw(cls, name: str, *, centre_mm: tuple[float, float], size_mm: tuple[float, float, float],
             depth_mm: float, correlation_mm: float, cv: float) -> BlockField:
        """Draw the field named ``name`` (e.g. ``"block_5p0/stiffness"``) over a block's top ``depth_mm``."""
        spacing = correlation_mm / _SAMPLES_PER_CORRELATION_LENGTH
        extent = (size_mm[0], size_mm[1], min(depth_mm, size_mm[2]))
        shape = tuple(int(math.ceil(e / spacing)) + 1 for e in extent)
        values = lognormal_field(shape, spacing_mm=spacing, correlation_mm=correlation_mm, cv=cv, seed=name_seed(name))
        origin = (centre_mm[0] - size_mm[0] / 2, centre_mm[1] - size_mm[1] / 2, 0.0)
        return cls(values=values, origin_mm=origin, spacing_mm=spacing)

    def image_plane(self, probe_x_mm: float, probe_y_mm: float, depth_m: np.ndarray, lateral_m: np.ndarray) -> np.ndarray:
        """The field on the image plane of a probe centred at ``(probe_x_mm, probe_y_mm)``.

        Linear interpolation; beyond the grid the nearest edge value. Returns float32 ``(depth, lateral)``.
        """
        x_idx = ((probe_x_mm + np.asarray(lateral_m) * 1e3) - self.origin_mm[0]) / self.spacing_mm
        y_idx = (probe_y_mm - self.origin_mm[1]) / self.spacing_mm
        z_idx = (np.asarray(depth_m) * 1e3 - self.origin_mm[2]) / self.spacing_mm
        zz, xx = np.meshgrid(z_idx, x_idx, indexing="ij")
        coords = np.stack([xx, np.full_like(xx, y_idx), zz])
        return map_coordinates(self.values, coords, order=1, mode="nearest").astype(np.float32)


__all__ = ["BlockField", "lognormal_field"]
