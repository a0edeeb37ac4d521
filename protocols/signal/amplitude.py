"""The amplitude shortcut: a sequence's modulus guessed from how far the gel moved, not how fast.

Radiation-force displacement falls with stiffness (a softer gel moves further under the same push), so
in an ideal lab a one-number summary of the displacement predicts the label. In a real lab the push
force varies with coupling, attenuation and heating, which is why ARFI amplitude is read only
qualitatively and SWEI measures speed. This module holds the summaries and the one-feature regression
a net could learn as a shortcut; the twin's realism check and the study's baselines use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shearlab.protocols.sequences import ImageGrid

AmplitudeFeature = Literal["displacement_std_um", "peak_near_focus_um"]
AMPLITUDE_FEATURES: tuple[AmplitudeFeature, ...] = ("displacement_std_um", "peak_near_focus_um")
RegressionFamily = Literal["log_linear", "log_quadratic", "nearest"]
REGRESSION_FAMILIES: tuple[RegressionFamily, ...] = ("log_linear", "log_quadratic", "nearest")
# Half-size of the box around the push focus whose peak is the "peak near the focus", m: the beam's
# lateral FWHM (0.57 mm) and the -3 dB axial half-extent's core.
FOCUS_BOX_HALF_M = (2e-3, 0.5e-3)
# Neighbours of the nearest-neighbour regression: few enough to follow a curved relation, enough to
# average a position's scatter.
NEIGHBOURS = 7


def displacement_mean_std_um(volume_um: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of a whole displacement volume, its unit, accumulated in float64.

    One pass of sums (einsum widens in cache-sized blocks): a third of numpy's ``mean`` and ``std``, which
    widen the whole volume to a float64 copy; the session writer computes them for every sequence. Equal
    to those within 1e-14 relative, since a displacement volume's mean is small against its spread.
    """
    flat = np.asarray(volume_um).reshape(-1)
    if flat.size == 0:
        return math.nan, math.nan
    mean = float(np.einsum("i->", flat, dtype=np.float64)) / flat.size
    mean_square = float(np.einsum("i,i->", flat, flat, dtype=np.float64)) / flat.size
    return mean, math.sqrt(max(mean_square - mean * mean, 0.0))


def displacement_std_um(volume_um: np.ndarray) -> float:
    """Standard deviation of a whole displacement volume, its unit (``displacement_mean_std_um``)."""
    return displacement_mean_std_um(volume_um)[1]


def amplitude_summary(volume_um: np.ndarray, grid: ImageGrid, *, push_lateral_m: float,
                      focus_depth_m: float) -> dict[AmplitudeFeature, float]:
    """The amplitude summaries of one sequence.

    ``displacement_std_um``: standard deviation of the whole displacement volume;
    ``peak_near_focus_um``: the largest displacement in a box around the push focus (depth +/-2 mm,
    lateral +/-0.5 mm), over all frames.
    """
    volume = np.asarray(volume_um, dtype=np.float64)
    rows = np.abs(grid.depth_m - focus_depth_m) <= FOCUS_BOX_HALF_M[0]
    cols = np.abs(grid.lateral_m - push_lateral_m) <= FOCUS_BOX_HALF_M[1]
    if not rows.any() or not cols.any():
        raise ValueError("the push focus lies outside the image")
    return {"displacement_std_um": displacement_std_um(volume),
            "peak_near_focus_um": float(volume[:, rows][:, :, cols].max())}


@dataclass(frozen=True)
class AmplitudeRegression:
    """A one-feature regression of the label on the log of an amplitude summary."""

    family: RegressionFamily
    log_feature: np.ndarray
    label_kpa: np.ndarray
    coefficients: np.ndarray

    @classmethod
    def fit(cls, feature: Sequence[float], label_kpa: Sequence[float], *, family: RegressionFamily) -> AmplitudeRegression:
        x = np.log(np.asarray(feature, dtype=np.float64))
        y = np.asarray(label_kpa, dtype=np.float64)
        if x.size != y.size or x.size < 3 or not np.all(np.isfinite(x)):
            raise ValueError("need at least 3 positive features, one per label")
        degree = {"log_linear": 1, "log_quadratic": 2, "nearest": 0}[family]
        coefficients = np.polyfit(x, y, degree) if degree else np.empty(0)
        return cls(family=family, log_feature=x, label_kpa=y, coefficients=coefficients)

    def predict(self, feature: Sequence[float]) -> np.ndarray:
        x = np.log(np.asarray(feature, dtype=np.float64))
        if self.family != "nearest":
            return np.polyval(self.coefficients, x)
        k = min(NEIGHBOURS, self.log_feature.size)
        nearest = np.argsort(np.abs(x[:, None] - self.log_feature[None, :]), axis=1)[:, :k]
        mean_kpa: np.ndarray = self.label_kpa[nearest].mean(axis=1)
        return mean_kpa


def leave_one_group_out_mae(feature: Sequence[float], label_kpa: Sequence[float], groups: Sequence[object], *,
                            family: RegressionFamily | None) -> float:
    """MAE of predicting each group's labels from a regression fitted on the other groups, kPa.

    ``family=None`` predicts the other groups' mean label (the baseline the shortcut must beat).
    """
    x = np.asarray(feature, dtype=np.float64)
    y = np.asarray(label_kpa, dtype=np.float64)
    keys = np.asarray([str(g) for g in groups])
    errors = np.empty_like(y)
    for key in np.unique(keys):
        held = keys == key
        if family is None:
            errors[held] = np.abs(y[held] - y[~held].mean())
        else:
            model = AmplitudeRegression.fit(x[~held], y[~held], family=family)
            errors[held] = np.abs(y[held] - model.predict(x[held]))
    return float(errors.mean())


__all__ = [
    "AMPLITUDE_FEATURES",
    "REGRESSION_FAMILIES",
    "AmplitudeFeature",
    "AmplitudeRegression",
    "RegressionFamily",
    "amplitude_summary",
    "displacement_std_um",
    "leave_one_group_out_mae",
]
