"""Figures after the paper's Figs. 6-10, as matplotlib figures (Agg) and PNG files. Maps are ``(depth, lateral)`` kPa.

Each builder returns the ``Figure`` (so its plotted data can be checked); ``save_figure`` writes the PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from shearlab.protocols.sequences import ImageGrid  # noqa: E402


def _extent_mm(grid: ImageGrid) -> tuple[float, float, float, float]:
    dx, dz = abs(grid.dx_m) * 1e3, grid.dz_m * 1e3
    return (grid.lateral_m[0] * 1e3 - dx / 2, grid.lateral_m[-1] * 1e3 + dx / 2,
            grid.depth_m[-1] * 1e3 + dz / 2, grid.depth_m[0] * 1e3 - dz / 2)


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders created) and release it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _mark(ax: plt.Axes, grid: ImageGrid, roi: tuple[slice, slice] | None, push_lateral_mm: float | None) -> None:
    if roi is not None:
        rows, cols = roi
        x0 = grid.lateral_m[cols.start] * 1e3
        z0 = grid.depth_m[rows.start] * 1e3
        width = (grid.lateral_m[cols.stop - 1] - grid.lateral_m[cols.start]) * 1e3
        height = (grid.depth_m[rows.stop - 1] - grid.depth_m[rows.start]) * 1e3
        ax.add_patch(Rectangle((x0, z0), width, height, fill=False, edgecolor="white", linestyle="--", label="ROI"))
    if push_lateral_mm is not None:
        ax.axvline(push_lateral_mm, color="red", linewidth=1, label="push")


def map_panels(panels: Mapping[str, Mapping[str, np.ndarray]], grid: ImageGrid, *, vmax_kpa: float,
               label: str = "E (kPa)", push_lateral_mm: Mapping[str, float] | None = None,
               inclusion_mask: np.ndarray | None = None, title: str = "") -> Figure:
    """Maps in a grid of panels on one colour scale (paper Figs. 6, 8, 9): one row per key of ``panels``
    (a push, a phantom), one column per method; NaN (no estimate) shows grey. ``push_lateral_mm`` marks
    each row's push; ``inclusion_mask`` outlines the true inclusion."""
    rows = list(panels)
    columns = list(dict.fromkeys(name for row in panels.values() for name in row))
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.3 * len(columns), 2.9 * len(rows)), squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.75")
    image = None
    for i, row in enumerate(rows):
        for j, column in enumerate(columns):
            ax = axes[i][j]
            values = panels[row].get(column)
            if values is None:
                ax.set_axis_off()
                continue
            image = ax.imshow(np.ma.masked_invalid(values), extent=_extent_mm(grid), cmap=cmap, vmin=0, vmax=vmax_kpa,
                              aspect="equal")
            if push_lateral_mm is not None and row in push_lateral_mm:
                _mark(ax, grid, None, push_lateral_mm[row])
            if inclusion_mask is not None:
                ax.contour(grid.lateral_m * 1e3, grid.depth_m * 1e3, inclusion_mask.astype(float), levels=[0.5],
                           colors="white", linewidths=0.8)
            ax.set_title(f"{column}: {row}" if len(rows) > 1 else column, fontsize=9)
            ax.set_xlabel("lateral (mm)")
            ax.set_ylabel("depth (mm)")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label=label, shrink=0.8)
    fig.suptitle(title)
    return fig


def mae_vs(x: Sequence[float], mae: Mapping[str, Sequence[tuple[float, float, float]]], *,
           xlabel: str, title: str = "") -> Figure:
    """MAE with its 95 % interval ``(value, low, high)`` against stiffness or push, one line per method
    (paper Fig. 7). A NaN interval (a single probe position) draws the point without a bar."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    spread = max(x) - min(x) if len(x) > 1 else 1.0
    for i, (name, values) in enumerate(mae.items()):
        table = np.asarray(values, np.float64).reshape(-1, 3)
        below = np.nan_to_num(table[:, 0] - table[:, 1], nan=0.0)
        above = np.nan_to_num(table[:, 2] - table[:, 0], nan=0.0)
        offset = (i - (len(mae) - 1) / 2) * 0.012 * spread
        ax.errorbar(np.asarray(x) + offset, table[:, 0], yerr=[below, above], marker="o", capsize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MAE (kPa), 95 % interval")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def dice_curves(thresholds_kpa: Sequence[float] | np.ndarray, curves: Mapping[str, Sequence[float] | np.ndarray], *,
                marked_threshold_kpa: float | None = None, title: str = "") -> Figure:
    """Dice against binarisation threshold, one line per method (paper Fig. 10)."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for name, curve in curves.items():
        ax.plot(thresholds_kpa, curve, label=name)
    if marked_threshold_kpa is not None:
        ax.axvline(marked_threshold_kpa, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("threshold (kPa)")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig
