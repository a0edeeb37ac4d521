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
from matplotlib.image import AxesImage  # noqa: E402

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


def _mark_push(ax: plt.Axes, grid: ImageGrid, push_lateral_mm: float) -> None:
    """The push as a red line where it falls on the map; off the map, an arrow at the edge that points
    to it, so every panel keeps the map's own extent."""
    left, right = grid.lateral_m[0] * 1e3, grid.lateral_m[-1] * 1e3
    if left <= push_lateral_mm <= right:
        ax.axvline(push_lateral_mm, color="red", linewidth=1)
        return
    at_left = push_lateral_mm < left
    # Inside the map, at the arrow's tail: above the axes the label would run into the panel's title.
    ax.annotate(f"push at {push_lateral_mm:+g} mm", xy=(0.0 if at_left else 1.0, 0.5), xycoords="axes fraction",
                xytext=(0.12 if at_left else 0.88, 0.5), textcoords="axes fraction", ha="left" if at_left else "right",
                va="center", color="red", fontsize=7, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
                arrowprops={"arrowstyle": "->", "color": "red"})


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
                _mark_push(ax, grid, push_lateral_mm[row])
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


def estimate_sigma_panels(rows: Mapping[str, tuple[np.ndarray, np.ndarray]], grid: ImageGrid, *, vmax_kpa: float,
                          sigma_vmax_kpa: float, estimate_label: str = "E (kPa)", sigma_label: str = "sigma (kPa)",
                          push_lateral_mm: Mapping[str, float] | None = None, title: str = "") -> Figure:
    """Each row's modulus map beside its sigma map: one row per key (a push, a position), the estimates on
    one colour scale and the sigmas on another, each with its colour bar; NaN shows grey."""
    names = list(rows)
    fig, axes = plt.subplots(len(names), 2, figsize=(7.6, 2.7 * len(names) + 0.4), squeeze=False, layout="constrained")
    cmaps = (plt.get_cmap("viridis").with_extremes(bad="0.75"), plt.get_cmap("magma").with_extremes(bad="0.75"))
    images: list[AxesImage] = []
    for i, name in enumerate(names):
        for j, (values, vmax, label) in enumerate(zip(rows[name], (vmax_kpa, sigma_vmax_kpa), ("E", "sigma"), strict=True)):
            ax = axes[i][j]
            image = ax.imshow(np.ma.masked_invalid(values), extent=_extent_mm(grid), cmap=cmaps[j], vmin=0, vmax=vmax,
                              aspect="equal")
            if i == 0:
                images.append(image)
            if push_lateral_mm is not None and name in push_lateral_mm:
                _mark_push(ax, grid, push_lateral_mm[name])
            ax.set_title(f"{label}: {name}", fontsize=9)
            ax.set_xlabel("lateral (mm)")
            ax.set_ylabel("depth (mm)")
    for j, label in enumerate((estimate_label, sigma_label)):
        fig.colorbar(images[j], ax=axes[:, j].tolist(), label=label, shrink=0.9)
    fig.suptitle(title)
    return fig


def reliability_diagram(levels: Sequence[float], observed: Mapping[str, Sequence[float]],
                        bins: Sequence[Mapping[str, float]], *, title: str = "") -> Figure:
    """Left: observed coverage of each nominal central interval against its level, one line per curve in
    ``observed`` (the diagonal is perfect calibration). Right: SweiNet's check, RMS log error against the
    RMS predicted sigma in equal-count bins of sigma (``bins``: ``sigma``, ``rmse``), on the diagonal if calibrated."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 4.2))
    left.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, values in observed.items():
        left.plot(levels, values, marker="o", markersize=3, label=name)
    left.set_xlabel("nominal coverage of the central interval")
    left.set_ylabel("observed coverage")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    sigma = np.array([b["sigma"] for b in bins]) * 100
    rmse = np.array([b["rmse"] for b in bins]) * 100
    top = max(float(sigma.max(initial=1.0)), float(rmse.max(initial=1.0))) * 1.1
    right.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1)
    right.plot(sigma, rmse, marker="o")
    right.set_xlabel("predicted sigma, RMS over the bin (%)")
    right.set_ylabel("RMS log error (%)")
    right.set_xlim(0, top)
    right.set_ylim(0, top)
    right.grid(alpha=0.3)
    fig.suptitle(title)
    return fig
