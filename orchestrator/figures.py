"""Figures the acquisition side produces (the training package draws the learning figures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from shearlab.datasets.records import CalibrationFit  # noqa: E402
from shearlab.protocols.stress_strain import CompressionRun  # noqa: E402


def stress_strain_figure(runs: list[CompressionRun], fit: CalibrationFit) -> Figure:
    """Paper Fig. 4: stress (kPa) against strain (%) of every run, the fit line over the fit range."""
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    for k, run in enumerate(runs):
        ax.plot(run.strain() * 100, run.stress_pa() / 1e3, lw=0.8, alpha=0.7, label=f"cylinder {k + 1}" if len(runs) <= 8 else None)
    eps = np.linspace(fit.strain_min, fit.strain_max, 20)
    ax.plot(eps * 100, fit.e_kpa * eps + fit.extra.get("intercept_kpa", 0.0), "k--", lw=2,
            label=f"fit {fit.strain_min:.0%}-{fit.strain_max:.0%}: E = {fit.e_kpa:.1f} kPa")
    ax.axvspan(fit.strain_min * 100, fit.strain_max * 100, color="0.9", zorder=0)
    ax.set_xlabel("strain (%)")
    ax.set_ylabel("stress (kPa)")
    ax.set_title(f"batch {fit.batch_id} ({fit.concentration_pct} % gelatin)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (folders created) and release it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
