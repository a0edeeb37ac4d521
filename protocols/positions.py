"""Probe positions on a phantom's top surface."""

from __future__ import annotations

import zlib

import numpy as np

from shearlab.protocols.plans import BlockTarget


def probe_positions_mm(block: BlockTarget, n: int, *, edge_margin_mm: float, seed: int) -> np.ndarray:
    """``n`` probe centres ``(x_mm, y_mm)``, shape (n, 2), in the robot base frame.

    Explicit ``block.positions_mm`` win; otherwise uniform random positions at least
    ``edge_margin_mm`` from the block's edges (a probe near an edge images the side wall and the
    shear wave reflects off it), reproducible from ``seed`` and the block's name.
    """
    if block.positions_mm is not None:
        return np.asarray(block.positions_mm, dtype=float).reshape(-1, 2)
    half = np.array(block.size_mm[:2]) / 2 - edge_margin_mm
    if np.any(half <= 0):
        raise ValueError(f"block {block.name!r}: edge margin {edge_margin_mm} mm leaves no room on a {block.size_mm[:2]} mm top")
    rng = np.random.default_rng([seed, zlib.crc32(block.name.encode())])
    positions: np.ndarray = rng.uniform(-half, half, size=(n, 2)) + np.array([block.x_mm, block.y_mm])
    return positions
