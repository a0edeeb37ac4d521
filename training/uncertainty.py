"""How far to trust each pixel: the calibration of the CNN's sigma, and the figures that check it.

A net with a sigma head (``DenseNet3d.distribution``) predicts at every pixel a log-normal,
``log E ~ N(log m, s^2)``: ``m`` the estimate (kPa), ``s`` its raw relative sigma. Trained on the
training windows, ``s`` says how far the net misses windows like those; on positions it never saw it
misses by more, so ``s`` is recalibrated on the validation positions (Kuleshov et al., ICML 2018,
"Accurate uncertainties for deep learning using calibrated regression"): for each nominal level ``p``
the multiplier ``q(p)`` such that a fraction ``p`` of the validation pixels has its label inside
``m exp(+/- q(p) s)``. Calibrating every level, not one scale factor, keeps the 95 % interval honest
when the errors have heavier tails than a Gaussian. The calibrated sigma, the one maps show, is the
standard deviation: ``k s`` with ``k`` the RMS of ``z`` on the validation pixels (for a Gaussian
``k = q(0.6827)``; with heavier tails the standard deviation is wider than the 68 % interval).

Figures of merit, over pixels whose label is known (``truth``):

- coverage of a nominal ``p`` interval: the fraction of pixels with ``|z| <= q(p)``, ``z`` the
  standardised log error ``(log truth - log m) / s``; its calibration error ``|coverage - p|``;
- SweiNet's calibration error (Jin et al., arXiv 2203.10678): pixels grouped into equal-count bins by
  calibrated sigma; in each bin the RMS log error against the RMS sigma; the mean absolute deviation
  in percent of the sigma (SweiNet reports 3.84 %).

Arrays are float kPa (estimate, truth) and dimensionless (sigma), any shape; NaN marks a missing
estimate and is left out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field, model_validator
from scipy.special import ndtri

from shearlab.protocols.strict_model import StrictModel

# One sigma of a Gaussian: the nominal level of the +/- 1 sigma interval.
ONE_SIGMA_LEVEL = math.erf(1 / math.sqrt(2))
# The nominal intervals the report gives (issue 16): 50 %, 68 % (one sigma), 95 %.
REPORTED_LEVELS = (0.5, ONE_SIGMA_LEVEL, 0.95)
# Levels of the reliability diagram and of the recalibration table.
RELIABILITY_LEVELS = tuple(sorted({*np.round(np.arange(0.05, 0.96, 0.05), 2).tolist(), ONE_SIGMA_LEVEL, 0.99}))
# Equal-count bins of SweiNet's calibration error.
SWEINET_BINS = 10


def gaussian_multiplier(level: float | tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Half-width in sigmas of the central ``level`` interval of a Gaussian (1.96 at 95 %)."""
    return np.asarray(ndtri((1 + np.asarray(level, np.float64)) / 2))


class SigmaCalibration(StrictModel):
    """Interval multipliers ``q(p)`` at nominal levels ``p``: the interval at level ``p`` is
    ``estimate * exp(+/- q(p) * raw_sigma)``. Stored in the checkpoint next to the weights."""

    levels: tuple[float, ...] = Field(min_length=2)
    multipliers: tuple[float, ...] = Field(min_length=2)
    # Calibrated over raw sigma: the RMS of the standardised log error on the fitting pixels.
    sigma_scale: float = Field(default=1.0, gt=0)
    # Where the multipliers come from, e.g. "validation: 42 sequences, 6 positions".
    fitted_on: str = "Gaussian, uncalibrated"

    @model_validator(mode="after")
    def _check(self) -> SigmaCalibration:
        if len(self.levels) != len(self.multipliers):
            raise ValueError("one multiplier per level")
        if any(not 0 < p < 1 for p in self.levels) or list(self.levels) != sorted(self.levels):
            raise ValueError("levels must increase inside (0, 1)")
        if any(b < a for a, b in zip(self.multipliers, self.multipliers[1:], strict=False)) or self.multipliers[0] < 0:
            raise ValueError("multipliers must be non-negative and grow with the level")
        return self

    @classmethod
    def gaussian(cls) -> SigmaCalibration:
        """The raw sigma taken at its word: Gaussian multipliers (1 at 68.27 %, 1.96 at 95 %)."""
        return cls(levels=RELIABILITY_LEVELS, multipliers=tuple(gaussian_multiplier(RELIABILITY_LEVELS).tolist()))

    @classmethod
    def fit(cls, abs_z: np.ndarray, *, fitted_on: str) -> SigmaCalibration:
        """Multipliers that make every level's coverage exact on ``abs_z``, the ``|z|`` of held-out pixels."""
        values = np.asarray(abs_z, np.float64).ravel()
        values = values[np.isfinite(values)]
        if values.size < len(RELIABILITY_LEVELS):
            raise ValueError(f"{values.size} finite pixels cannot calibrate {len(RELIABILITY_LEVELS)} levels")
        multipliers = np.maximum.accumulate(np.quantile(values, RELIABILITY_LEVELS))
        return cls(levels=RELIABILITY_LEVELS, multipliers=tuple(multipliers.tolist()),
                   sigma_scale=float(np.sqrt(np.mean(values**2))), fitted_on=fitted_on)

    def multiplier(self, level: float) -> float:
        """``q(level)``, interpolated between the table's levels."""
        if not self.levels[0] <= level <= self.levels[-1]:
            raise ValueError(f"level {level} outside the calibrated {self.levels[0]}-{self.levels[-1]}")
        return float(np.interp(level, self.levels, self.multipliers))

    def sigma(self, raw_sigma: np.ndarray) -> np.ndarray:
        """Calibrated relative sigma: the standard deviation of the log error."""
        return np.asarray(raw_sigma, np.float64) * self.sigma_scale

    def interval_kpa(self, estimate_kpa: np.ndarray, raw_sigma: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` kPa of the central ``level`` interval."""
        spread = np.exp(self.multiplier(level) * np.asarray(raw_sigma, np.float64))
        estimate = np.asarray(estimate_kpa, np.float64)
        return estimate / spread, estimate * spread


def sigma_kpa(estimate_kpa: np.ndarray, relative_sigma: np.ndarray) -> np.ndarray:
    """A relative sigma in kPa: ``estimate * sigma``, the log-normal's standard deviation to first order;
    NaN where the estimate is not positive (no log-normal has that median)."""
    estimate = np.asarray(estimate_kpa, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(estimate > 0, estimate * np.asarray(relative_sigma, np.float64), np.nan)


def standardised_log_error(estimate_kpa: np.ndarray, raw_sigma: np.ndarray, truth_kpa: float | np.ndarray) -> np.ndarray:
    """``(log truth - log estimate) / raw_sigma``; NaN where the estimate is missing or not positive."""
    estimate = np.asarray(estimate_kpa, np.float64)
    truth = np.broadcast_to(np.asarray(truth_kpa, np.float64), estimate.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(estimate) & (estimate > 0) & np.isfinite(raw_sigma) & (np.asarray(raw_sigma) > 0)
        return np.where(valid, (np.log(truth) - np.log(np.where(valid, estimate, 1.0))) / np.where(valid, raw_sigma, 1.0), np.nan)


def coverage(abs_z: np.ndarray, calibration: SigmaCalibration, levels: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Observed coverage of each nominal level's interval over the finite ``|z|``: ``(len(levels),)``."""
    values = np.asarray(abs_z, np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.full(len(levels), np.nan)
    return np.array([float(np.mean(values <= calibration.multiplier(p))) for p in levels])


def sweinet_calibration_error(log_error: np.ndarray, sigma: np.ndarray, *, bins: int = SWEINET_BINS) -> dict[str, Any]:
    """SweiNet's calibration error: equal-count bins of calibrated ``sigma``; per bin the RMS of
    ``log_error`` (log truth - log estimate) against the RMS sigma; the mean of ``|RMSE - sigma| / sigma``
    over bins, in percent. Returns ``error_pct`` and ``bins`` (``sigma``, ``rmse``, ``pixels`` each)."""
    error, spread = np.asarray(log_error, np.float64).ravel(), np.asarray(sigma, np.float64).ravel()
    finite = np.isfinite(error) & np.isfinite(spread)
    error, spread = error[finite], spread[finite]
    if error.size < bins:
        return {"error_pct": None, "bins": []}
    order = np.argsort(spread, kind="stable")
    rows = []
    for members in np.array_split(order, bins):
        rms_sigma, rmse = float(np.sqrt(np.mean(spread[members] ** 2))), float(np.sqrt(np.mean(error[members] ** 2)))
        rows.append({"sigma": rms_sigma, "rmse": rmse, "pixels": int(members.size)})
    deviation = [abs(r["rmse"] - r["sigma"]) / r["sigma"] for r in rows if r["sigma"] > 0]
    return {"error_pct": 100 * float(np.mean(deviation)) if deviation else None, "bins": rows}


__all__ = [
    "ONE_SIGMA_LEVEL",
    "RELIABILITY_LEVELS",
    "REPORTED_LEVELS",
    "SigmaCalibration",
    "coverage",
    "gaussian_multiplier",
    "sigma_kpa",
    "standardised_log_error",
    "sweinet_calibration_error",
]
