"""A quick look at a simulated displacement sequence: a few frames and a space-time plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from shearlab.protocols.sequences import ImageGrid

PREVIEW_FRAMES = 4
COLORMAP = "RdBu_r"


def render_preview(
    displacement_m: np.ndarray,
    grid: ImageGrid,
    out_png: Path,
    *,
    push_lateral_mm: float,
    depth_mm: float = 10.0,
) -> Path:
    """Write a PNG with ``PREVIEW_FRAMES`` frames and a lateral x time plot at ``depth_mm``.

    Parameters
    ----------
    displacement_m : np.ndarray
        Axial displacement, m, shape ``(frames, depth, lateral)`` on ``grid``.
    grid : ImageGrid
        Pixel positions and frame times of ``displacement_m``.
    out_png : Path
        Where to write the figure; parent folders are created.
    push_lateral_mm : float
        Push location, mm from the probe centre (drawn as a dashed line).
    depth_mm : float
        Depth of the space-time plot's row, mm.

    Returns
    -------
    Path
        ``out_png``.
    """
    if displacement_m.shape != grid.shape:
        raise ValueError(f"displacement shape {displacement_m.shape} does not match the grid {grid.shape}")
    displacement_um = np.asarray(displacement_m, dtype=np.float64) * 1e6
    limit_um = float(np.abs(displacement_um).max()) or 1.0
    lateral_mm = grid.lateral_m * 1e3
    depth_axis_mm = grid.depth_m * 1e3
    time_ms = grid.frame_times_s * 1e3
    image_extent = (lateral_mm[0], lateral_mm[-1], depth_axis_mm[-1], depth_axis_mm[0])
    style = dict(cmap=COLORMAP, vmin=-limit_um, vmax=limit_um, aspect="auto")

    fig = Figure(figsize=(4.0 * (PREVIEW_FRAMES + 1), 3.6), layout="constrained")
    axes = fig.subplots(1, PREVIEW_FRAMES + 1)
    frames = np.unique(np.linspace(0, grid.frame_times_s.size - 1, PREVIEW_FRAMES).round().astype(int))
    for ax, frame in zip(axes, frames, strict=False):  # fewer frames than panels when the sequence is short
        picture = ax.imshow(displacement_um[frame], extent=image_extent, **style)
        ax.axvline(push_lateral_mm, color="k", linestyle="--", linewidth=0.8)
        ax.set_title(f"t = {time_ms[frame]:.2f} ms")
        ax.set_xlabel("lateral (mm)")
        ax.set_ylabel("depth (mm)")
    row = int(np.argmin(np.abs(depth_axis_mm - depth_mm)))
    space_time = axes[-1]
    space_time.imshow(displacement_um[:, row, :], extent=(lateral_mm[0], lateral_mm[-1], time_ms[-1], time_ms[0]), **style)
    space_time.axvline(push_lateral_mm, color="k", linestyle="--", linewidth=0.8)
    space_time.set_title(f"depth {depth_axis_mm[row]:.1f} mm")
    space_time.set_xlabel("lateral (mm)")
    space_time.set_ylabel("time (ms)")
    fig.colorbar(picture, ax=axes, label="axial displacement (um)", shrink=0.9)

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    return out_png


__all__ = ["render_preview"]
