"""Young's modulus from unconfined-compression indentation runs (SPEC §2, paper Fig. 4).

E = sigma / epsilon with sigma = F / (pi r^2) and epsilon = delta_l / l0, one linear regression
over all runs of a gelatin batch, restricted to 2-7 % strain. The regression keeps an intercept:
the toe region at first touch shifts every curve by a small offset strain that must not bias E.

Every run enters that regression on the same footing: read at the same strains, the pooled line's
slope is the mean of the runs' own slopes and its intercept the mean of their intercepts, which is how
it is computed here. A plain regression over the raw samples would instead weight each cylinder by how
many samples it logged and where: a rig logging at a fixed rate gives every run the same count, but a
logging loop that falls behind (a busy host, the twin at speed) does not, and the fit then leans
towards whichever cylinder was sampled densest (on the twin a batch's modulus moved by 1.7 % between
two runs of one seed that way, while each cylinder's own slope moved by 0.7 % at most; the mean of
the slopes moved by 0.3 % at most over three runs).

The uncertainty comes from the cylinders, not from the samples. Thousands of force samples of one
curve are strongly correlated and say nothing about how the next cylinder of the batch will differ;
the cylinders are the independent replicates (the paper indents 8 per concentration for that reason).
Each cylinder gets its own slope over the same strain range, and the batch modulus's 95 % interval is
Student's ``t`` over those slopes: ``E +/- t(0.975, n - 1) s / sqrt(n)``. A sample cast from the
same batch (a block) deviates from the fit by ``s sqrt(1 + 1 / n)`` (the prediction interval), which is
the uncertainty its label carries.
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
    """A batch's modulus: the pooled regression, each cylinder's own slope and the interval between them.

    ``ci95_kpa`` is the half-width of the 95 % interval of the batch modulus; ``cylinder_sd_kpa`` the
    standard deviation of the cylinders' slopes.
    """

    e_kpa: float
    ci95_kpa: float
    intercept_kpa: float
    n_points: int
    r2: float
    strain_range: tuple[float, float]
    cylinder_e_kpa: tuple[float, ...]
    cylinder_sd_kpa: float

    @property
    def sample_sd_kpa(self) -> float:
        """Standard deviation of another sample of the batch (a block) about ``e_kpa``."""
        return self.cylinder_sd_kpa * math.sqrt(1.0 + 1.0 / len(self.cylinder_e_kpa))


# A cylinder needs this many samples inside the strain range for a slope of its own.
_MIN_POINTS = 3


def fit_modulus(runs: Sequence[CompressionRun], *, strain_range: tuple[float, float] = DEFAULT_STRAIN_RANGE) -> ModulusFit:
    """One regression of stress on strain over every run within ``strain_range``, each run weighing the
    same, and the interval from the spread of the cylinders' own slopes (module docstring).

    Raises ``ValueError`` when fewer than two runs have at least 3 samples inside the range (a run
    stopped at its force limit before 2 % strain, say): one cylinder says nothing about the next.
    """
    lo, hi = strain_range
    if not 0 <= lo < hi:
        raise ValueError(f"strain range must satisfy 0 <= low < high, got {strain_range}")
    strains, stresses, lines = [], [], []
    for run in runs:
        if run.compression_mm.shape != run.force_n.shape:
            raise ValueError("compression_mm and force_n must have the same shape")
        eps = run.strain()
        keep = (eps >= lo) & (eps <= hi)
        if keep.sum() >= _MIN_POINTS:
            strains.append(eps[keep])
            stresses.append(run.stress_pa()[keep])
            lines.append(stats.linregress(strains[-1], stresses[-1]))
    if len(lines) < 2:
        raise ValueError(f"only {len(lines)} of {len(runs)} runs reach {_MIN_POINTS} samples between {lo:.0%} and "
                         f"{hi:.0%} strain; the interval needs at least 2 cylinders")
    slopes = [float(line.slope) / 1e3 for line in lines]
    e_kpa = float(np.mean(slopes))
    intercept_kpa = float(np.mean([line.intercept for line in lines])) / 1e3
    spread = float(np.std(slopes, ddof=1))
    half = float(stats.t.ppf(0.975, len(slopes) - 1)) * spread / math.sqrt(len(slopes))
    return ModulusFit(
        e_kpa=e_kpa,
        ci95_kpa=half,
        intercept_kpa=intercept_kpa,
        n_points=sum(e.size for e in strains),
        r2=_r2_per_run(strains, stresses, e_kpa * 1e3, intercept_kpa * 1e3),
        strain_range=(float(lo), float(hi)),
        cylinder_e_kpa=tuple(slopes),
        cylinder_sd_kpa=spread,
    )


def _r2_per_run(strains: list[np.ndarray], stresses: list[np.ndarray], slope_pa: float, intercept_pa: float) -> float:
    """R^2 of the batch line over every run's samples, each run weighing the same."""
    weights = np.concatenate([np.full(e.size, 1.0 / e.size) for e in strains])
    x, y = np.concatenate(strains), np.concatenate(stresses)
    residual = np.average((y - (slope_pa * x + intercept_pa)) ** 2, weights=weights)
    return float(1.0 - residual / np.average((y - np.average(y, weights=weights)) ** 2, weights=weights))
