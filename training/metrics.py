"""Evaluation metrics (SPEC §2): MAE, Pearson correlation, Dice and its threshold curve, failures, throughput.

Estimates are kPa arrays of any shape; NaN marks a missing estimate (a failed ToF speed, a pixel with no full
window). Error metrics use the pixels where both estimate and truth are finite; missing estimates are
counted by :func:`failure_fraction`, never scored as zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def _paired(estimate: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    estimate, truth = np.broadcast_arrays(np.asarray(estimate, np.float64), np.asarray(truth, np.float64))
    both = np.isfinite(estimate) & np.isfinite(truth)
    return estimate[both], truth[both]


def mae_kpa(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (population) of ``|estimate - truth|`` over finite pairs, kPa."""
    e, t = _paired(estimate, truth)
    if e.size == 0:
        return float("nan"), float("nan")
    error = np.abs(e - t)
    return float(error.mean()), float(error.std())


def pearson(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation over finite pairs; NaN if fewer than two pairs or either side is constant."""
    e, t = _paired(estimate, truth)
    if e.size < 2 or np.ptp(e) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(np.corrcoef(e, t)[0, 1])


def dice(estimate_kpa: np.ndarray, inclusion_mask: np.ndarray, threshold_kpa: float) -> float:
    """Dice of ``estimate > threshold`` against the true inclusion mask, over pixels with an estimate.

    Both sets are restricted to finite estimates (a map shows nothing where it has no estimate); two
    empty sets give 1.
    """
    estimate = np.asarray(estimate_kpa, np.float64)
    mask = np.asarray(inclusion_mask, bool)
    finite = np.isfinite(estimate)
    predicted = finite & (np.where(finite, estimate, -np.inf) > threshold_kpa)
    truth = finite & mask
    total = predicted.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (predicted & truth).sum() / total)


def dice_curve(estimate_kpa: np.ndarray, inclusion_mask: np.ndarray, thresholds_kpa: Sequence[float] | np.ndarray) -> np.ndarray:
    """Dice at each threshold (paper Fig. 10), shape ``(len(thresholds_kpa),)``."""
    return np.array([dice(estimate_kpa, inclusion_mask, t) for t in thresholds_kpa])


def failure_fraction(estimates: np.ndarray, attempted: np.ndarray | None = None) -> float:
    """Fraction of attempted estimates that are NaN (all pixels attempted if ``attempted`` is None)."""
    estimates = np.asarray(estimates, np.float64)
    attempted = np.ones(estimates.shape, bool) if attempted is None else np.asarray(attempted, bool)
    n = int(attempted.sum())
    return float((attempted & ~np.isfinite(estimates)).sum() / n) if n else float("nan")


def error_summary(estimate: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``mae_kpa``, ``mae_std_kpa``, ``pearson``, ``n`` (finite pairs) and ``missing_fraction``."""
    mean, std = mae_kpa(estimate, truth)
    estimate = np.asarray(estimate, np.float64)
    return {"mae_kpa": mean, "mae_std_kpa": std, "pearson": pearson(estimate, truth),
            "n": int(_paired(estimate, truth)[0].size), "missing_fraction": failure_fraction(estimate)}


def mae_by_group(estimate: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> dict[float, tuple[float, float]]:
    """MAE (mean, std) per group value, e.g. per concentration or per push (paper Fig. 7); 1-D inputs."""
    estimate, truth, groups = (np.asarray(a).ravel() for a in (estimate, truth, groups))
    return {float(g): mae_kpa(estimate[groups == g], truth[groups == g]) for g in np.unique(groups)}


def positions_per_s(evaluate: Callable[[], object], n_positions: int, *, repeats: int = 1) -> float:
    """Throughput of ``evaluate`` (which estimates ``n_positions`` pixels), best of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate()
        best = min(best, time.perf_counter() - t0)
    return n_positions / best
