"""The CNN's uncertainty on held-out data: its sigma calibrated on validation positions, checked on test.

``fit_sigma_calibration`` maps the validation sequences and fits the interval multipliers
(``training.uncertainty``); ``evaluate_uncertainty`` maps every test sequence's ROI and measures how
often the label lies inside the nominal 50 %, 68 % and 95 % intervals (with 95 % intervals from
resampling probe positions, as every other figure of the study), SweiNet's calibration error, and how
a sequence's sigma spreads and follows its error: the figures behind the uncertainty gate of the
campaign's QC. Figures: the reliability diagram and the modulus maps beside their sigma maps.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from shearlab.datasets.reader import SequenceRef
from shearlab.training.bootstrap import GroupedErrors, mae_interval
from shearlab.training.estimators import CnnEstimator, SequenceView, crop_grid, roi
from shearlab.training.evaluation import FIG6_PUSHES, Evaluation
from shearlab.training.figures import estimate_sigma_panels, reliability_diagram, save_figure
from shearlab.training.uncertainty import (
    RELIABILITY_LEVELS,
    REPORTED_LEVELS,
    SigmaCalibration,
    coverage,
    sigma_kpa,
    standardised_log_error,
    sweinet_calibration_error,
)

# Side of the square patch of each validation sequence's ROI that the calibration maps: a quarter of the
# ROI's pixels at a random place per sequence covers the ROI over a few dozen sequences at a quarter of
# the cost (the quick demo's budget); None maps the whole ROI.
VALIDATION_PATCH_PX: int | None = 64
# Percentiles of the per-sequence median ROI sigma that the report gives (the QC gate's evidence).
ROI_SIGMA_PERCENTILES = (50, 90, 99)


@dataclass
class _Mapped:
    """One sequence's estimate and raw sigma over a region, and its label."""

    ref: SequenceRef
    estimate_kpa: np.ndarray
    raw_sigma: np.ndarray

    @property
    def label_kpa(self) -> float:
        return float(self.ref.label_e_kpa or np.nan)

    @property
    def abs_z(self) -> np.ndarray:
        return np.abs(standardised_log_error(self.estimate_kpa, self.raw_sigma, self.label_kpa))


def _group(ref: SequenceRef) -> tuple[str, int]:
    return (ref.session_id, ref.position_index)


def _patch(rows: slice, cols: slice, side: int | None, rng: np.random.Generator) -> tuple[slice, slice]:
    if side is None:
        return rows, cols
    r0 = int(rng.integers(rows.start, max(rows.stop - side, rows.start) + 1))
    c0 = int(rng.integers(cols.start, max(cols.stop - side, cols.start) + 1))
    return slice(r0, min(r0 + side, rows.stop)), slice(c0, min(c0 + side, cols.stop))


def fit_sigma_calibration(cnn: CnnEstimator, refs: Sequence[SequenceRef], *, patch_px: int | None = VALIDATION_PATCH_PX,
                          seed: int = 0) -> SigmaCalibration:
    """Interval multipliers that make the net's intervals exact on ``refs`` (the validation sequences):
    a ``patch_px`` square of each sequence's ROI, placed at random from ``seed``."""
    labelled = [r for r in refs if r.label_e_kpa is not None]
    if not labelled:
        raise ValueError("no labelled validation sequences to calibrate the sigma on")
    rng = np.random.default_rng(seed)
    abs_z = []
    for ref in labelled:
        view = SequenceView.read(ref)
        rows, cols = _patch(*roi(view), patch_px, rng)
        abs_z.append(_Mapped(ref, *cnn.distribution(view, rows, cols)).abs_z.ravel())
    values = np.concatenate(abs_z)
    positions = len({_group(r) for r in labelled})
    return SigmaCalibration.fit(values, fitted_on=f"validation: {len(labelled)} sequences from {positions} probe positions, "
                                                  f"{int(np.isfinite(values).sum())} pixels")


def _coverage_interval(mapped: Sequence[_Mapped], calibration: SigmaCalibration, level: float) -> list[float]:
    """Coverage of the ``level`` interval over every pixel, with its 95 % interval over probe positions."""
    limit = calibration.multiplier(level)
    by_position: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)
    for m in mapped:
        z = m.abs_z.ravel()
        by_position[_group(m.ref)].append(np.where(np.isfinite(z), (z <= limit).astype(np.float64), np.nan))
    return mae_interval(GroupedErrors.from_pixels([np.concatenate(v) for _, v in sorted(by_position.items())])).as_list()


def _roi_sigma_spread(mapped: Sequence[_Mapped], calibration: SigmaCalibration) -> dict[str, Any]:
    """Per sequence the median calibrated relative sigma over its ROI: percentiles and how it ranks the
    sequences' relative errors (Spearman)."""
    medians = np.array([float(np.nanmedian(calibration.sigma(m.raw_sigma))) for m in mapped])
    errors = np.array([float(np.nanmedian(np.abs(m.estimate_kpa / m.label_kpa - 1))) for m in mapped])
    rank = spearmanr(medians, errors).statistic if len(mapped) > 2 and np.ptp(medians) > 0 else float("nan")
    return {**{f"p{p}": float(np.percentile(medians, p)) for p in ROI_SIGMA_PERCENTILES}, "max": float(medians.max()),
            "spearman_with_error": float(rank), "sequences": len(mapped)}


def _summary(mapped: Sequence[_Mapped], calibration: SigmaCalibration) -> dict[str, Any]:
    abs_z = np.concatenate([m.abs_z.ravel() for m in mapped])
    # z is NaN exactly where an estimate has no log (missing or not positive): the same pixels drop out here.
    with np.errstate(invalid="ignore", divide="ignore"):
        log_error = np.concatenate([np.log(m.label_kpa) - np.log(m.estimate_kpa.ravel()) for m in mapped])
    sigma = np.concatenate([calibration.sigma(m.raw_sigma).ravel() for m in mapped])
    finite = np.isfinite(abs_z)
    return {"coverage": coverage(abs_z, calibration, REPORTED_LEVELS).tolist(),
            "reliability": coverage(abs_z, calibration, RELIABILITY_LEVELS).tolist(),
            "sweinet": sweinet_calibration_error(np.where(finite, log_error, np.nan), sigma),
            "pixels": int(finite.sum())}


def evaluate_uncertainty(cnn: CnnEstimator, calibration: SigmaCalibration, refs: Sequence[SequenceRef], *,
                         out_dir: Path | None) -> Evaluation:
    """Calibration of the CNN's sigma on the ROI of every held-out block sequence ``refs``.

    Metrics: per reported level (50 %, 68.27 %, 95 %) the observed coverage with its interval and the
    calibration error ``|coverage - level|``; the reliability curve, calibrated and as the raw Gaussian
    sigma would have it; SweiNet's calibration error; by concentration; the spread of the per-sequence
    ROI sigma (the QC gate's evidence). Figures (into ``out_dir``): reliability diagram, modulus and
    sigma maps of the concentration with the most test positions.
    """
    labelled = [r for r in refs if r.label_e_kpa is not None]
    if not labelled:
        raise ValueError("no labelled test sequences to evaluate the uncertainty on")
    mapped, grids = [], []
    for ref in labelled:
        view = SequenceView.read(ref)
        rows, cols = roi(view)
        mapped.append(_Mapped(ref, *cnn.distribution(view, rows, cols)))
        grids.append(crop_grid(view.grid, rows, cols))
    summary, raw = _summary(mapped, calibration), _summary(mapped, SigmaCalibration.gaussian())
    levels = [{"level": p, "coverage": _coverage_interval(mapped, calibration, p),
               "error": abs(summary["coverage"][i] - p), "uncalibrated_coverage": raw["coverage"][i]}
              for i, p in enumerate(REPORTED_LEVELS)]
    by_concentration = []
    for concentration in sorted({m.ref.concentration_pct or 0.0 for m in mapped}):
        members = [m for m in mapped if (m.ref.concentration_pct or 0.0) == concentration]
        part = _summary(members, calibration)
        by_concentration.append({
            "concentration_pct": concentration, "label_kpa": float(np.mean([m.label_kpa for m in members])),
            "sequences": len(members), "coverage": part["coverage"],
            "median_sigma_kpa": float(np.nanmedian(np.concatenate([sigma_kpa(m.estimate_kpa, calibration.sigma(m.raw_sigma)).ravel()
                                                                   for m in members])))})
    all_sigma = np.concatenate([calibration.sigma(m.raw_sigma).ravel() for m in mapped])
    metrics: dict[str, Any] = {
        "distribution": "log-normal per pixel: median = the CNN's estimate, sigma from its sigma head",
        "calibrated_on": calibration.fitted_on,
        "levels": levels,
        "max_error_68_95": max(levels[1]["error"], levels[2]["error"]),
        "mean_reliability_error": float(np.mean(np.abs(np.array(summary["reliability"]) - np.array(RELIABILITY_LEVELS)))),
        "reliability": {"levels": list(RELIABILITY_LEVELS), "observed": summary["reliability"], "uncalibrated": raw["reliability"]},
        "sweinet_error_pct": summary["sweinet"]["error_pct"],
        "sweinet_bins": summary["sweinet"]["bins"],
        "uncalibrated_sweinet_error_pct": raw["sweinet"]["error_pct"],
        "median_relative_sigma": float(np.nanmedian(all_sigma)),
        "roi_sigma": _roi_sigma_spread(mapped, calibration),
        "by_concentration": by_concentration,
        "test_sequences": len(mapped),
        "test_positions": len({_group(m.ref) for m in mapped}),
        "pixels": summary["pixels"],
    }
    if out_dir is None:
        return Evaluation(metrics)
    figures = [save_figure(reliability_diagram(RELIABILITY_LEVELS, {"calibrated": summary["reliability"],
                                                                    "raw sigma, Gaussian": raw["reliability"]},
                                               summary["sweinet"]["bins"],
                                               title=f"Uncertainty on {len(mapped)} held-out sequences"),
                           out_dir / "reliability.png"),
               _sigma_maps(mapped, grids[0], calibration, out_dir / "maps_sigma.png")]
    return Evaluation(metrics, figures)


def _sigma_maps(mapped: Sequence[_Mapped], grid: Any, calibration: SigmaCalibration, path: Path) -> Path:
    """Fig. 6's pushes for the concentration with the most test positions: mean estimate and mean sigma
    (kPa) over its positions, per push."""
    positions: dict[float, set[tuple[str, int]]] = defaultdict(set)
    for m in mapped:
        positions[m.ref.concentration_pct or 0.0].add(_group(m.ref))
    concentration = max(positions, key=lambda c: (len(positions[c]), c))
    chosen = [m for m in mapped if (m.ref.concentration_pct or 0.0) == concentration]
    pushes = sorted({m.ref.push_index for m in chosen})
    shown = [p for p in FIG6_PUSHES if p in pushes] or pushes[:3]
    rows, lateral = {}, {}
    for push in shown:
        at = [m for m in chosen if m.ref.push_index == push]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a pixel with no estimate at any position stays NaN (grey)
            estimate = np.nanmean(np.stack([m.estimate_kpa for m in at]), axis=0)
            sigma = np.nanmean(np.stack([sigma_kpa(m.estimate_kpa, calibration.sigma(m.raw_sigma)) for m in at]), axis=0)
        rows[f"push {push}"], lateral[f"push {push}"] = (estimate, sigma), at[0].ref.push_lateral_mm
    label = float(np.mean([m.label_kpa for m in chosen]))
    sigma_top = float(np.nanpercentile(np.stack([r[1] for r in rows.values()]), 99))
    figure = estimate_sigma_panels(rows, grid, vmax_kpa=1.6 * label, sigma_vmax_kpa=max(sigma_top, 1e-3),
                                   push_lateral_mm=lateral,
                                   title=f"{concentration:g} % (label {label:.1f} kPa): CNN estimate and its sigma, "
                                         f"mean over {len(positions[concentration])} positions")
    return save_figure(figure, path)


__all__ = ["VALIDATION_PATCH_PX", "evaluate_uncertainty", "fit_sigma_calibration"]
