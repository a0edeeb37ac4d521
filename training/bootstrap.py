"""Confidence intervals of evaluation figures by resampling probe positions (cluster bootstrap).

Pixels of one sequence, and sequences of one probe position, share their speckle, their coupling and
their stretch of gel: they are not independent draws, and a pixelwise standard error would be far too
narrow. The unit of independent variation is the probe position, so the bootstrap resamples positions
with replacement and recomputes the figure from every pixel of the drawn positions (Efron & Tibshirani,
"An Introduction to the Bootstrap", 1993, ch. 6; the cluster bootstrap of Davison & Hinkley 1997,
ch. 3.8). Intervals are percentile intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A figure and its 95 % percentile interval."""

    value: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.value, self.low, self.high]


@dataclass(frozen=True)
class GroupedErrors:
    """Per-group sums that MAE-like figures are ratios of: ``error_sum[g] / count[g]`` summed over groups.

    ``error_sum`` and ``count`` have shape ``(groups,)``; a figure over any multiset of groups is
    ``sum(error_sum[drawn]) / sum(count[drawn])``.
    """

    error_sum: np.ndarray
    count: np.ndarray

    @classmethod
    def from_pixels(cls, absolute_error: Sequence[np.ndarray]) -> GroupedErrors:
        """One array of absolute errors per group (NaN: no estimate, left out)."""
        sums, counts = [], []
        for errors in absolute_error:
            values = np.asarray(errors, dtype=np.float64)
            finite = np.isfinite(values)
            sums.append(float(values[finite].sum()))
            counts.append(int(finite.sum()))
        return cls(np.asarray(sums), np.asarray(counts, dtype=np.float64))

    def mean(self, weights: np.ndarray | None = None) -> float:
        w = np.ones_like(self.count) if weights is None else weights
        total = float((w * self.count).sum())
        return float((w * self.error_sum).sum()) / total if total else float("nan")


def _draws(n_groups: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n_groups)`` counts of how often each group is drawn."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=resamples).astype(np.float64)


def mae_interval(errors: GroupedErrors, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Interval:
    """MAE over every pixel of every group and its 95 % interval from resampling groups."""
    value = errors.mean()
    if errors.count.size < 2:
        return Interval(value, float("nan"), float("nan"))
    weights = _draws(errors.count.size, resamples, seed)
    boot = (weights @ errors.error_sum) / np.maximum(weights @ errors.count, 1e-12)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Interval(value, float(low), float(high))


def difference_interval(a: GroupedErrors, b: GroupedErrors, *, resamples: int = DEFAULT_RESAMPLES,
                        seed: int = 0) -> Interval:
    """MAE of ``a`` minus MAE of ``b`` on the same groups (paired: the same draws for both), with its
    95 % interval. Negative: ``a`` is the better method."""
    if a.count.size != b.count.size:
        raise ValueError("paired intervals need the same groups for both methods")
    value = a.mean() - b.mean()
    if a.count.size < 2:
        return Interval(value, float("nan"), float("nan"))
    weights = _draws(a.count.size, resamples, seed)
    boot = (weights @ a.error_sum) / np.maximum(weights @ a.count, 1e-12) - \
        (weights @ b.error_sum) / np.maximum(weights @ b.count, 1e-12)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Interval(value, float(low), float(high))


__all__ = ["DEFAULT_RESAMPLES", "GroupedErrors", "Interval", "difference_interval", "mae_interval"]
