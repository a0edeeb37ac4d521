"""The study's evaluation: the CNN and every baseline on the same held-out pixels, with intervals.

Homogeneous blocks are scored pixelwise over the training ROI (SPEC §2) against each sequence's
calibrated label; inclusion phantoms over a field around the ROI (2.5-17.5 mm deep, +/-8 mm lateral)
against a truth map built from the phantom's geometry and each gel's calibrated modulus.

Every figure of merit is a mean over pixels, and its 95 % interval comes from resampling probe positions
(``training.bootstrap``). The push zone is the band of columns whose 65 px speed-estimator span straddles
the push: the paper's finding is that ToF fails there and the CNN does not, so every method's error is
also given inside and outside it.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shearlab.datasets.reader import SequenceRef, SessionReader
from shearlab.protocols.phantoms import Inclusion, inclusion_mask
from shearlab.protocols.sequences import ImageGrid
from shearlab.protocols.signal.tof import compound_maps, smooth_map
from shearlab.training.bootstrap import GroupedErrors, difference_interval, mae_interval
from shearlab.training.estimators import (
    CnnEstimator,
    Estimator,
    SequenceView,
    SpeedEstimator,
    crop_grid,
    push_zone,
    roi,
)
from shearlab.training.figures import dice_curves, mae_vs, map_panels, save_figure
from shearlab.training.metrics import dice, dice_curve, pearson

INCLUSION_DEPTH_MM = (2.5, 17.5)
# Wide enough for a 10 mm inclusion and a band of background on each side.
INCLUSION_HALF_WIDTH_MM = 8.0
# Pushes never trained on (SPEC §2); the CNN's error there against the others is the push-location check.
UNSEEN_PUSHES = (1, 7)
# The paper's claim of push independence, read as: at most this ratio of errors (issue 11).
PUSH_INDEPENDENCE_RATIO = 1.5
# Gains applied to a sequence's displacement in the amplitude-invariance check, and its limit.
INVARIANCE_GAINS = (0.5, 2.0)
INVARIANCE_LIMIT = 0.05
# The invariance check runs on this many pixels square at the ROI's centre of every test sequence.
INVARIANCE_PATCH_PX = 24
# Fig. 8 (spread over positions) needs at least this many test positions of one concentration.
MIN_POSITIONS_FOR_SPREAD = 3
# The pushes the paper shows: Fig. 6 pushes 2, 4, 6; Fig. 8 pushes 1, 4, 7.
FIG6_PUSHES = (2, 4, 6)
FIG8_PUSHES = (1, 4, 7)


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    figures: list[Path] = field(default_factory=list)


@dataclass
class _Scored:
    """One method's ROI map of one test sequence and where its pixels lie."""

    ref: SequenceRef
    estimate_kpa: np.ndarray
    zone: np.ndarray

    @property
    def error(self) -> np.ndarray:
        return np.abs(self.estimate_kpa - float(self.ref.label_e_kpa or np.nan))


def _group(ref: SequenceRef) -> tuple[str, int]:
    return (ref.session_id, ref.position_index)


def _grouped(scored: Sequence[_Scored], select: Callable[[_Scored], np.ndarray] | None = None) -> GroupedErrors:
    """Absolute errors summed per probe position (the bootstrap's unit)."""
    by_group: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)
    for s in scored:
        errors = s.error if select is None else s.error[select(s)]
        by_group[_group(s.ref)].append(errors.ravel())
    return GroupedErrors.from_pixels([np.concatenate(v) for _, v in sorted(by_group.items())])


def _interval(scored: Sequence[_Scored], select: Callable[[_Scored], np.ndarray] | None = None) -> list[float]:
    return mae_interval(_grouped(scored, select)).as_list()


def _method_summary(scored: Sequence[_Scored], seconds: float) -> dict[str, Any]:
    estimates = np.concatenate([s.estimate_kpa.ravel() for s in scored])
    truth = np.concatenate([np.full(s.estimate_kpa.size, s.ref.label_e_kpa, dtype=np.float64) for s in scored])
    return {
        "mae_kpa": _interval(scored),
        "mae_push_zone_kpa": _interval(scored, lambda s: np.broadcast_to(s.zone, s.error.shape)),
        "mae_outside_push_zone_kpa": _interval(scored, lambda s: np.broadcast_to(~s.zone, s.error.shape)),
        "pearson": pearson(estimates, truth),
        "failed_fraction": float(np.mean(~np.isfinite(estimates))),
        "pixels_per_s": estimates.size / seconds if seconds > 0 else float("nan"),
    }


def _by(scored: Sequence[_Scored], key: Callable[[SequenceRef], float]) -> dict[float, list[_Scored]]:
    groups: dict[float, list[_Scored]] = defaultdict(list)
    for s in scored:
        groups[key(s.ref)].append(s)
    return dict(sorted(groups.items()))


def _table(scored: dict[str, list[_Scored]], key: Callable[[SequenceRef], float], name: str) -> list[dict[str, Any]]:
    """One row per value of ``key`` (a concentration, a push) with each method's MAE and interval."""
    rows = []
    per_method = {method: _by(values, key) for method, values in scored.items()}
    first = next(iter(per_method.values()))
    for value, members in first.items():
        rows.append({
            name: value,
            "label_kpa": float(np.mean([s.ref.label_e_kpa for s in members])),
            "sequences": len(members),
            "positions": len({_group(s.ref) for s in members}),
            "mae_kpa": {method: _interval(groups[value]) for method, groups in per_method.items()},
        })
    return rows


def amplitude_invariance(cnn: CnnEstimator, views: Sequence[SequenceView]) -> dict[str, Any]:
    """How much scaling a sequence's displacement moves the CNN's estimate: per sequence the median
    relative change over a patch at the ROI's centre, then the median and the largest over sequences."""
    changes: dict[float, list[float]] = {gain: [] for gain in INVARIANCE_GAINS}
    for view in views:
        rows, cols = roi(view)
        r0 = (rows.start + rows.stop - INVARIANCE_PATCH_PX) // 2
        c0 = (cols.start + cols.stop - INVARIANCE_PATCH_PX) // 2
        patch = (slice(r0, r0 + INVARIANCE_PATCH_PX), slice(c0, c0 + INVARIANCE_PATCH_PX))
        base = cnn.estimate(view, *patch)
        for gain in INVARIANCE_GAINS:
            scaled = cnn.estimate(view.scaled(gain), *patch)
            changes[gain].append(float(np.median(np.abs(scaled - base) / np.abs(base))))
    median = max(float(np.median(v)) for v in changes.values())
    return {"gains": list(INVARIANCE_GAINS), "median_relative_change": median,
            "largest_relative_change": max(float(np.max(v)) for v in changes.values()),
            "sequences": len(views), "limit": INVARIANCE_LIMIT, "holds": median < INVARIANCE_LIMIT}


def push_independence(cnn_scored: Sequence[_Scored]) -> dict[str, Any]:
    """The CNN's error at the pushes it never trained on against the others."""
    unseen = [s for s in cnn_scored if s.ref.push_index in UNSEEN_PUSHES]
    seen = [s for s in cnn_scored if s.ref.push_index not in UNSEEN_PUSHES]
    if not unseen or not seen:
        return {"holds": None, "ratio": None, "unseen_pushes": list(UNSEEN_PUSHES)}
    mae_unseen, mae_seen = _interval(unseen), _interval(seen)
    ratio = mae_unseen[0] / mae_seen[0]
    return {"mae_unseen_pushes_kpa": mae_unseen, "mae_trained_pushes_kpa": mae_seen, "ratio": ratio,
            "limit": PUSH_INDEPENDENCE_RATIO, "holds": ratio <= PUSH_INDEPENDENCE_RATIO,
            "unseen_pushes": list(UNSEEN_PUSHES)}


def evaluate_blocks(estimators: Sequence[Estimator], refs: Sequence[SequenceRef], *, out_dir: Path | None) -> Evaluation:
    """Every method on the ROI of every held-out block sequence (the first estimator is the CNN).

    Metrics: per method the MAE with its 95 % interval (overall, inside and outside the push zone),
    Pearson r, failed fraction and throughput, and the CNN's margin over each baseline (paired
    interval); tables by concentration and by push; the CNN's amplitude invariance and push-location
    independence. Figures (into ``out_dir``; none without it): MAE vs stiffness and vs push (Fig. 7),
    mean maps per push (Fig. 6) and, with enough positions, their spread (Fig. 8).
    """
    if not refs:
        raise ValueError("no test sequences to evaluate")
    cnn = estimators[0]
    if not isinstance(cnn, CnnEstimator):
        raise ValueError("the first estimator must be the CNN")
    scored: dict[str, list[_Scored]] = {e.key: [] for e in estimators}
    seconds = dict.fromkeys(scored, 0.0)
    views, grid = [], None
    for ref in refs:
        view = SequenceView.read(ref)
        rows, cols = roi(view)
        zone = push_zone(view.grid, cols, view.push_lateral_m)[None, :]
        grid = crop_grid(view.grid, rows, cols)
        for estimator in estimators:
            started = time.perf_counter()
            estimate = estimator.estimate(view, rows, cols)
            seconds[estimator.key] += time.perf_counter() - started
            scored[estimator.key].append(_Scored(ref, estimate, zone))
        views.append(view)
    methods = {e.key: {"label": e.label, **_method_summary(scored[e.key], seconds[e.key])} for e in estimators}
    for estimator in estimators:
        if isinstance(estimator, SpeedEstimator):
            methods[estimator.key].update(alpha=estimator.alpha, alpha_rule=estimator.alpha_rule)
        if estimator.key != cnn.key:
            methods[estimator.key]["cnn_margin_kpa"] = difference_interval(
                _grouped(scored[cnn.key]), _grouped(scored[estimator.key])).as_list()
    metrics: dict[str, Any] = {
        "methods": methods,
        "by_concentration": _table(scored, lambda r: float(r.concentration_pct or np.nan), "concentration_pct"),
        "by_push": _table(scored, lambda r: float(r.push_index), "push"),
        "amplitude_invariance": amplitude_invariance(cnn, views),
        "push_independence": push_independence(scored[cnn.key]),
        "test_sequences": len(refs),
        "test_positions": len({_group(r) for r in refs}),
    }
    if out_dir is None or grid is None:
        return Evaluation(metrics)
    return Evaluation(metrics, _block_figures(metrics, scored, grid, {e.key: e.label for e in estimators}, out_dir))


def _block_figures(metrics: dict[str, Any], scored: dict[str, list[_Scored]], grid: ImageGrid,
                   labels: dict[str, str], out_dir: Path) -> list[Path]:
    speed_based = [key for key in scored if key.startswith(("tof", "ttp"))]
    shown = ["cnn", *speed_based]
    stiffness = [row["label_kpa"] for row in metrics["by_concentration"]]
    pushes = [row["push"] for row in metrics["by_push"]]
    figures = [
        save_figure(mae_vs(stiffness, {labels[m]: [row["mae_kpa"][m] for row in metrics["by_concentration"]] for m in shown},
                           xlabel="calibrated modulus (kPa)", title="MAE vs stiffness (Fig. 7)"),
                    out_dir / "mae_vs_stiffness.png"),
        save_figure(mae_vs(pushes, {labels[m]: [row["mae_kpa"][m] for row in metrics["by_push"]] for m in shown},
                           xlabel="push (1 and 7 never trained on)", title="MAE vs push location (Fig. 7)"),
                    out_dir / "mae_vs_push.png"),
    ]
    # Figs. 6 and 8 for the concentration with the most test positions, on the paper's pushes.
    cnn = scored["cnn"]
    counts = defaultdict(set)
    for s in cnn:
        counts[s.ref.concentration_pct].add(_group(s.ref))
    concentration = max(counts, key=lambda c: (len(counts[c]), c or 0.0))
    label = float(np.mean([s.ref.label_e_kpa for s in cnn if s.ref.concentration_pct == concentration]))
    available = {s.ref.push_index for s in cnn if s.ref.concentration_pct == concentration}
    positions = len(counts[concentration])
    lateral = {f"push {s.ref.push_index}": s.ref.push_lateral_mm for s in cnn}

    def panels(pushes: tuple[int, ...], statistic: Callable[[np.ndarray], np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        for push in [p for p in pushes if p in available] or sorted(available):
            out[f"push {push}"] = {}
            for method in shown:
                stack = np.stack([s.estimate_kpa for s in scored[method]
                                  if s.ref.concentration_pct == concentration and s.ref.push_index == push])
                with warnings.catch_warnings():
                    # A pixel where every estimate failed stays NaN (grey), without a warning.
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out[f"push {push}"][labels[method]] = statistic(stack)
        return out

    plural = "s" if positions > 1 else ""
    figures.append(save_figure(map_panels(panels(FIG6_PUSHES, lambda a: np.nanmean(a, axis=0)), grid, vmax_kpa=1.6 * label,
                                          push_lateral_mm=lateral,
                                          title=f"{concentration:g} % (label {label:.1f} kPa): mean over {positions} "
                                                f"position{plural} (Fig. 6)"),
                               out_dir / "maps_mean.png"))
    if positions >= MIN_POSITIONS_FOR_SPREAD:
        figures.append(save_figure(map_panels(panels(FIG8_PUSHES, lambda a: np.nanstd(a, axis=0)), grid, vmax_kpa=0.5 * label,
                                              label="std E (kPa)", push_lateral_mm=lateral,
                                              title=f"{concentration:g} %: spread over {positions} positions (Fig. 8)"),
                                   out_dir / "maps_spread.png"))
    return figures


def inclusion_truth_kpa(grid: ImageGrid, *, rows: slice, cols: slice, probe_offset_mm: float, background_kpa: float,
                        inclusions: Sequence[tuple[Inclusion, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Truth map and inclusion mask over a region; ``probe_offset_mm`` is the probe's lateral position
    relative to the block centre, ``inclusions`` pairs each inclusion with its calibrated modulus."""
    lateral_mm = grid.lateral_m[cols][None, :] * 1e3 + probe_offset_mm
    depth_mm = grid.depth_m[rows][:, None] * 1e3
    truth = np.full((depth_mm.size, lateral_mm.size), background_kpa, dtype=np.float64)
    mask = np.zeros(truth.shape, dtype=bool)
    for inclusion, e_kpa in inclusions:
        inside = inclusion_mask(inclusion, lateral_mm, depth_mm)
        truth[inside] = e_kpa
        mask |= inside
    return truth, mask


def session_truth_map(ref: SequenceRef, modulus_of_batch: Callable[[str], float]) -> tuple[ImageGrid, np.ndarray, np.ndarray]:
    """Truth map (kPa) and inclusion mask over the whole image of an inclusion-phantom sequence, from
    the phantom's geometry in its session's plan and each gel's calibrated modulus."""
    with SessionReader(ref.path) as reader:
        grid, info = reader.grid, reader.info
        pose = reader.read_sequence(ref.key).probe_pose
    block = info.plan["block"]
    inclusions = [(Inclusion.model_validate(i), modulus_of_batch(i["batch_id"])) for i in block["inclusions"]]
    truth, mask = inclusion_truth_kpa(grid, rows=slice(None), cols=slice(None), probe_offset_mm=pose[0] * 1e3 - block["x_mm"],
                                      background_kpa=modulus_of_batch(block["batch_id"]), inclusions=inclusions)
    return grid, truth, mask


def inclusion_region(grid: ImageGrid) -> tuple[slice, slice]:
    """The inclusion field of view: 2.5-17.5 mm deep, +/-8 mm lateral."""
    rows = slice(int(np.searchsorted(grid.depth_m, INCLUSION_DEPTH_MM[0] * 1e-3)),
                 int(np.searchsorted(grid.depth_m, INCLUSION_DEPTH_MM[1] * 1e-3)))
    cols = slice(int(np.searchsorted(grid.lateral_m, -INCLUSION_HALF_WIDTH_MM * 1e-3)),
                 int(np.searchsorted(grid.lateral_m, INCLUSION_HALF_WIDTH_MM * 1e-3)))
    return rows, cols


def _inclusion_scores(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray, threshold: float,
                      thresholds: np.ndarray) -> dict[str, Any]:
    curve = dice_curve(estimate, mask, thresholds)
    best = int(np.nanargmax(curve))
    inside, outside = np.abs(estimate[mask] - truth[mask]), np.abs(estimate[~mask] - truth[~mask])
    return {
        "mae_inclusion_kpa": float(np.nanmean(inside)) if np.isfinite(inside).any() else None,
        "mae_background_kpa": float(np.nanmean(outside)) if np.isfinite(outside).any() else None,
        "dice": dice(estimate, mask, threshold),
        "best_dice": float(curve[best]),
        "best_threshold_kpa": float(thresholds[best]),
        "failed_fraction": float(np.mean(~np.isfinite(estimate))),
        "dice_curve": curve.tolist(),
    }


def evaluate_inclusion(estimators: Sequence[Estimator], refs: Sequence[SequenceRef], *,
                       modulus_of_batch: Callable[[str], float], out_dir: Path, name: str) -> Evaluation:
    """Compounded maps of one inclusion position (its pushes, averaged; speed-based maps smoothed over
    2 mm first, as the paper does for ToF): MAE inside and outside the inclusion, Dice at the mid-modulus
    threshold and at each method's best threshold, the Dice curve (Figs. 9, 10)."""
    grid, full_truth, full_mask = session_truth_map(refs[0], modulus_of_batch)
    rows, cols = inclusion_region(grid)
    region = crop_grid(grid, rows, cols)
    truth, mask = full_truth[rows, cols], full_mask[rows, cols]
    per_method: dict[str, list[np.ndarray]] = {e.key: [] for e in estimators}
    for ref in refs:
        view = SequenceView.read(ref)
        for estimator in estimators:
            estimate = estimator.estimate(view, rows, cols)
            if isinstance(estimator, SpeedEstimator):
                estimate = smooth_map(estimate, region)
            per_method[estimator.key].append(estimate)
    maps = {key: compound_maps(values) for key, values in per_method.items()}
    threshold = float((truth[mask].mean() + truth[~mask].mean()) / 2) if mask.any() else float(np.median(truth))
    thresholds = np.linspace(truth.min() * 0.5, truth.max() * 1.3, 60)
    metrics: dict[str, Any] = {"threshold_kpa": threshold, "pushes": len(refs), "thresholds_kpa": thresholds.tolist(),
                               "inclusion_fraction": float(mask.mean()), "methods": {}}
    labels = {e.key: e.label for e in estimators}
    for key, estimate in maps.items():
        metrics["methods"][key] = {"label": labels[key], **_inclusion_scores(estimate, truth, mask, threshold, thresholds)}
    panels = {name: {"truth": truth, **{labels[key]: estimate for key, estimate in maps.items()}}}
    figures = [save_figure(map_panels(panels, region, vmax_kpa=float(truth.max() * 1.4), inclusion_mask=mask,
                                      title=f"{name}: mean of {len(refs)} pushes (Fig. 9)"),
                           out_dir / f"inclusion_{name}.png")]
    curves = {labels[key]: metrics["methods"][key]["dice_curve"] for key in maps}
    figures.append(save_figure(dice_curves(thresholds, curves, marked_threshold_kpa=threshold,
                                           title=f"{name}: Dice vs threshold (Fig. 10)"), out_dir / f"dice_{name}.png"))
    return Evaluation(metrics, figures)


__all__ = [
    "INVARIANCE_GAINS",
    "Evaluation",
    "amplitude_invariance",
    "evaluate_blocks",
    "evaluate_inclusion",
    "inclusion_region",
    "inclusion_truth_kpa",
    "push_independence",
    "session_truth_map",
]
