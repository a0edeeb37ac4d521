"""Young's modulus from unconfined-compression indentation runs (SPEC §2, paper Fig. 4).

E = sigma / epsilon with sigma = F / (pi r^2) and epsilon = delta_l / l0, one linear regression
over all runs of a gelatin batch, restricted to 2-7 % strain. The regression keeps an intercept:
the toe region at first touch shifts every curve by a small offset strain that must not bias E.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_STRAIN_RANGE = (0.02, 0.07)


@dataclass(frozen=True)
class CompressionRun:
    """One indentation of one cylinder, from first touch on.

    ``compression_mm`` is the plate travel past first touch (>= 0), ``force_n`` the Nano17 force
    after bias, both shape (n,).
    """

    compression_mm: np.ndarray
    force_n: np.ndarray
    radius_mm: float = 10.0
    length_mm: float = 40.0

    @classmethod
    def from_log(cls, plate_z_mm: np.ndarray, force_n: np.ndarray, *, touch_z_mm: float, radius_mm: float,
                 length_mm: float) -> CompressionRun:
        """From a plate-position log: compression past first touch, samples before touch dropped."""
        compression = touch_z_mm - np.asarray(plate_z_mm, dtype=float)
        keep = compression >= 0
        return cls(compression_mm=compression[keep], force_n=np.asarray(force_n, dtype=float)[keep],
                   radius_mm=radius_mm, length_mm=length_mm)

    def strain(self) -> np.ndarray:
        return self.compression_mm / self.length_mm

    def stress_pa(self) -> np.ndarray:
        return self.force_n / (math.pi * (self.radius_mm * 1e-3) ** 2)


@dataclass(frozen=True)
class ModulusFit:
    e_kpa: float
    ci95_kpa: float
    intercept_kpa: float
    n_points: int
    r2: float
    strain_range: tuple[float, float]


def fit_modulus(runs: Sequence[CompressionRun], *, strain_range: tuple[float, float] = DEFAULT_STRAIN_RANGE) -> ModulusFit:
    """One regression of stress on strain over every run, within ``strain_range``.

    Raises ``ValueError`` when fewer than 3 points fall inside the range (a run stopped at its
    force limit before 2 % strain, say).
    """
    lo, hi = strain_range
    if not 0 <= lo < hi:
        raise ValueError(f"strain range must satisfy 0 <= low < high, got {strain_range}")
    strains, stresses = [], []
    for run in runs:
        if run.compression_mm.shape != run.force_n.shape:
            raise ValueError("compression_mm and force_n must have the same shape")
        eps = run.strain()
        keep = (eps >= lo) & (eps <= hi)
        strains.append(eps[keep])
        stresses.append(run.stress_pa()[keep])
    x = np.concatenate(strains) if strains else np.empty(0)
    y = np.concatenate(stresses) if stresses else np.empty(0)
    if x.size < 3:
        raise ValueError(f"only {x.size} samples between {lo:.0%} and {hi:.0%} strain; need at least 3")
    fit = stats.linregress(x, y)
    t = stats.t.ppf(0.975, x.size - 2)
    return ModulusFit(
        e_kpa=float(fit.slope) / 1e3,
        ci95_kpa=float(t * fit.stderr) / 1e3,
        intercept_kpa=float(fit.intercept) / 1e3,
        n_points=int(x.size),
        r2=float(fit.rvalue**2),
        strain_range=(float(lo), float(hi)),
    )
