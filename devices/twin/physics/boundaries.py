"""The gel's edges in the image plane: the probe face above, the block's side walls and its bottom.

A block is finite (100 mm, SPEC §2) and a shear wave that meets its edges comes back into the field of
view when an edge is close enough: a push 13 mm from a side wall (the closest a plan's 25 mm edge
margin and the outer pushes at +/-12 mm allow) sees its reflection return after 26 mm of travel, within
the 5 ms record for any gel faster than 5.2 m/s (12.5 % and stiffer).

Conditions on the axial displacement ``u`` of the scalar image-plane model (SPEC §4):

- the probe face (depth 0) is pressed onto the gel through a thin, nearly incompressible layer of
  coupling gel, so the surface under it cannot move axially at kHz rates: ``u = 0`` (Dirichlet). The
  face (37 mm) spans the whole 33 mm field of view;
- the side walls of a demoulded block are free surfaces: ``du/dn = 0`` (Neumann) *(ours: the paper
  shows the blocks standing free on the table)*;
- the bottom rests on the table and is held by friction and adhesion: ``u = 0`` *(ours)*; 100 mm down,
  no wave reaches it and returns within a record.

Method of images: in a homogeneous medium the response inside the bounded region is the unbounded
response to the force plus its mirror images, with sign -1 across a Dirichlet plane and +1 across a
Neumann plane. Single reflections and the four corners are kept; images across two parallel planes lie
at least twice the block's size (200 mm) away, beyond any wave's reach within a record, and any image
whose support lies farther than the wave's reach from the output region is dropped. The finite
difference solver uses the same force (images included, evaluated inside the gel only) and puts the
planes into its grid, so both solvers solve the same problem.

The Gaussian beam reaches the probe face with a few per cent of its focal force; the images fold that
tail back with the opposite sign, which keeps the force smooth. Within a few millimetres of the face
the Gaussian model of the beam's near field is no more accurate than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shearlab.devices.twin.physics.shear_wave_exact import BodyForce
from shearlab.protocols.phantoms import Block


@dataclass(frozen=True)
class Boundaries:
    """Planes bounding the gel, in image coordinates (m): depth from the probe face, lateral from the
    probe centre. ``None`` leaves that side unbounded.

    Attributes
    ----------
    top_m, bottom_m : float or None
        Depths of the probe face and of the block's bottom (both ``u = 0``).
    left_m, right_m : float or None
        Lateral positions of the block's side walls (traction-free).
    """

    top_m: float | None = None
    bottom_m: float | None = None
    left_m: float | None = None
    right_m: float | None = None

    def __post_init__(self) -> None:
        if self.top_m is not None and self.bottom_m is not None and not self.top_m < self.bottom_m:
            raise ValueError(f"top ({self.top_m} m) must lie above bottom ({self.bottom_m} m)")
        if self.left_m is not None and self.right_m is not None and not self.left_m < self.right_m:
            raise ValueError(f"left wall ({self.left_m} m) must lie left of the right wall ({self.right_m} m)")

    @classmethod
    def of_block(cls, block: Block, probe_x_mm: float) -> Boundaries:
        """The probe face, walls and bottom of ``block`` seen from a probe centred at ``probe_x_mm``.

        The probe's lateral axis is the base x axis (see :class:`~shearlab.protocols.phantoms.Block`);
        its face rests on the block's top surface.
        """
        half_width_mm = block.size_mm[0] / 2
        return cls(
            top_m=0.0,
            bottom_m=block.size_mm[2] * 1e-3,
            left_m=(block.x_mm - half_width_mm - probe_x_mm) * 1e-3,
            right_m=(block.x_mm + half_width_mm - probe_x_mm) * 1e-3,
        )

    @property
    def is_unbounded(self) -> bool:
        return all(v is None for v in (self.top_m, self.bottom_m, self.left_m, self.right_m))

    def inside(self, depth_m: np.ndarray, lateral_m: np.ndarray) -> np.ndarray:
        """Boolean ``(depth, lateral)`` mask of the grid points inside the gel."""
        depth = np.asarray(depth_m, dtype=np.float64)[:, None]
        lateral = np.asarray(lateral_m, dtype=np.float64)[None, :]
        mask = np.ones((depth.size, lateral.size), dtype=bool)
        if self.top_m is not None:
            mask &= depth >= self.top_m
        if self.bottom_m is not None:
            mask &= depth <= self.bottom_m
        if self.left_m is not None:
            mask &= lateral >= self.left_m
        if self.right_m is not None:
            mask &= lateral <= self.right_m
        return mask

    def _images(self) -> list[tuple[float, float | None, float | None]]:
        """``(sign, depth_plane, lateral_plane)`` of the identity, single reflections and corners."""
        depth_planes = [(None, 1.0)] + [(p, -1.0) for p in (self.top_m, self.bottom_m) if p is not None]
        lateral_planes = [(None, 1.0)] + [(p, 1.0) for p in (self.left_m, self.right_m) if p is not None]
        return [(sz * sx, pz, px) for pz, sz in depth_planes for px, sx in lateral_planes]

    def with_images(self, body_force: BodyForce, *, support_m: tuple[float, float, float, float],
                    region_m: tuple[float, float, float, float], reach_m: float) -> BodyForce:
        """``body_force`` plus the mirror images that can reach ``region_m`` within ``reach_m``.

        Parameters
        ----------
        body_force : BodyForce
            ``force(depth_m, lateral_m) -> (depth, lateral)`` of the push, N/m^3.
        support_m : tuple of float
            ``(depth_lo, depth_hi, lateral_lo, lateral_hi)`` where the force is not negligible, m.
        region_m : tuple of float
            The box where the displacement is wanted, same order, m.
        reach_m : float
            How far a wave travels within the record, m.
        """
        terms = []
        z_lo, z_hi, x_lo, x_hi = support_m
        for sign, depth_plane, lateral_plane in self._images():
            iz = (z_lo, z_hi) if depth_plane is None else (2 * depth_plane - z_hi, 2 * depth_plane - z_lo)
            ix = (x_lo, x_hi) if lateral_plane is None else (2 * lateral_plane - x_hi, 2 * lateral_plane - x_lo)
            if _box_distance((*iz, *ix), region_m) <= reach_m:
                terms.append((sign, depth_plane, lateral_plane))

        def force(depth_m: np.ndarray, lateral_m: np.ndarray) -> np.ndarray:
            depth = np.asarray(depth_m, dtype=np.float64)
            lateral = np.asarray(lateral_m, dtype=np.float64)
            total = np.zeros((depth.size, lateral.size))
            for sign, depth_plane, lateral_plane in terms:
                z = depth if depth_plane is None else 2 * depth_plane - depth
                x = lateral if lateral_plane is None else 2 * lateral_plane - lateral
                total += sign * body_force(z, x)
            return total

        return force


def _box_distance(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Euclidean distance between two ``(z_lo, z_hi, x_lo, x_hi)`` boxes (0 when they overlap)."""
    dz = max(a[0] - b[1], b[0] - a[1], 0.0)
    dx = max(a[2] - b[3], b[2] - a[3], 0.0)
    return float(np.hypot(dz, dx))


__all__ = ["Boundaries"]
