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


def mean_std_maps(mean_kpa: np.ndarray, std_kpa: np.ndarray, grid: ImageGrid, *,
                  roi: tuple[slice, slice] | None = None, push_lateral_mm: float | None = None,
                  title: str = "", vmax_kpa: float | None = None) -> Figure:
    """Mean and std of the estimates of one push over positions, ROI and push marked (paper Figs. 6, 8)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, values, label in ((axes[0], mean_kpa, "mean E (kPa)"), (axes[1], std_kpa, "std E (kPa)")):
        image = ax.imshow(values, extent=_extent_mm(grid), cmap="viridis", aspect="equal",
                          vmin=0, vmax=vmax_kpa if label.startswith("mean") else None)
        _mark(ax, grid, roi, push_lateral_mm)
        ax.set_xlabel("lateral (mm)")
        ax.set_ylabel("depth (mm)")
        fig.colorbar(image, ax=ax, label=label)
    fig.suptitle(title)
    return fig


def mae_vs(x: Sequence[float], mae: Mapping[str, Sequence[tuple[float, float]]], *,
           xlabel: str, title: str = "") -> Figure:
    """MAE (mean +/- std) against stiffness or push location, one line per method (paper Fig. 7)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (name, values) in enumerate(mae.items()):
        table = np.asarray(values, np.float64).reshape(-1, 2)
        offset = (i - (len(mae) - 1) / 2) * 0.01 * (max(x) - min(x) if len(x) > 1 else 1)
        ax.errorbar(np.asarray(x) + offset, table[:, 0], yerr=table[:, 1], marker="o", capsize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MAE (kPa)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def inclusion_maps(maps_kpa: Mapping[str, np.ndarray], grid: ImageGrid, *,
                   inclusion_mask: np.ndarray | None = None, vmax_kpa: float | None = None,
                   title: str = "") -> Figure:
    """Inclusion maps side by side, e.g. per window size next to ToF, true outline overlaid (paper Fig. 9)."""
    n = len(maps_kpa)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    finite = [m[np.isfinite(m)] for m in maps_kpa.values()]
    vmax = vmax_kpa or max((float(f.max()) for f in finite if f.size), default=1.0)
    for ax, (name, values) in zip(axes[0], maps_kpa.items(), strict=True):
        image = ax.imshow(values, extent=_extent_mm(grid), cmap="viridis", vmin=0, vmax=vmax, aspect="equal")
        if inclusion_mask is not None:
            ax.contour(grid.lateral_m * 1e3, grid.depth_m * 1e3, inclusion_mask.astype(float), levels=[0.5],
                       colors="white", linewidths=0.8)
        ax.set_title(name)
        ax.set_xlabel("lateral (mm)")
    axes[0][0].set_ylabel("depth (mm)")
    fig.colorbar(image, ax=list(axes[0]), label="E (kPa)")
    fig.suptitle(title)
    return fig


def dice_curves(thresholds_kpa: Sequence[float] | np.ndarray, curves: Mapping[str, Sequence[float] | np.ndarray], *,
                marked_threshold_kpa: float | None = None, title: str = "") -> Figure:
    """Dice against binarisation threshold, one line per method (paper Fig. 10)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
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
