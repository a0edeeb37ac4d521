"""Evaluation of a trained CNN against the ToF baseline on held-out sequences and inclusion phantoms.

Everything here reads session files through ``shearlab.datasets`` and returns plain metrics and
figure paths; the Prefect training flow and the command line call it.

Regions: homogeneous blocks are scored pixelwise over the training ROI (SPEC §2) against the block's
calibrated modulus; inclusion phantoms over an inclusion field of view around the ROI (2.5-17.5 mm
deep, +/-8 mm lateral) against a truth map built from the phantom's known geometry and the
calibrated modulus of each gel. ToF runs on a crop around the region, wide enough for its 65 px
span and the filters' margins.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shearlab.datasets.reader import SequenceRef, SessionReader, read_displacement
from shearlab.protocols.phantoms import Inclusion, inclusion_mask
from shearlab.protocols.sequences import ImageGrid
from shearlab.protocols.signal.tof import TofSettings, compound_maps, fit_alpha, smooth_map, tof_modulus_kpa, tof_speed_map
from shearlab.training.figures import dice_curves, inclusion_maps, mae_vs, mean_std_maps, save_figure
from shearlab.training.inference import predict_dense
from shearlab.training.metrics import dice, dice_curve, error_summary, mae_by_group, mae_kpa
from shearlab.training.model import DenseNet3d

INCLUSION_DEPTH_MM = (2.5, 17.5)
# Wide enough for a 10 mm inclusion and a band of background on each side.
INCLUSION_HALF_WIDTH_MM = 8.0
# Extra columns and rows around a region for ToF: half its span plus the filters' reach.
TOF_MARGIN_PX = 48


@dataclass
class RegionMaps:
    """CNN and ToF estimates over one region of one sequence, kPa ``(rows, cols)``."""

    cnn_kpa: np.ndarray
    tof_speed_m_s: np.ndarray
    cnn_seconds: float
    tof_seconds: float


@dataclass
class Evaluation:
    metrics: dict
    figures: list[Path] = field(default_factory=list)


def _crop(grid: ImageGrid, rows: slice, cols: slice) -> ImageGrid:
    return ImageGrid(depth_m=grid.depth_m[rows], lateral_m=grid.lateral_m[cols], frame_times_s=grid.frame_times_s)


def _grow(region: slice, margin: int, size: int) -> slice:
    return slice(max(region.start - margin, 0), min(region.stop + margin, size))


def _tof_speed(volume: np.ndarray, grid: ImageGrid, rows: slice, cols: slice, push_lateral_mm: float,
               tof: TofSettings) -> np.ndarray:
    """ToF speeds over ``rows`` x ``cols``, computed on a crop wide enough for the span and filters."""
    r, c = _grow(rows, TOF_MARGIN_PX // 4, volume.shape[1]), _grow(cols, TOF_MARGIN_PX, volume.shape[2])
    speed = tof_speed_map(volume[:, r, c], _crop(grid, r, c), push_lateral_m=push_lateral_mm * 1e-3, settings=tof).speed_m_s
    return speed[rows.start - r.start:rows.stop - r.start, cols.start - c.start:cols.stop - c.start]


def region_maps(model: DenseNet3d, ref: SequenceRef, grid: ImageGrid, rows: slice, cols: slice, *,
                tof: TofSettings = TofSettings(), device: str = "cpu") -> RegionMaps:
    """Dense CNN estimates and ToF speeds over ``rows`` x ``cols`` of one sequence."""
    volume = read_displacement(ref)
    half = model.window_px // 2
    r, c = _grow(rows, half, volume.shape[1]), _grow(cols, half, volume.shape[2])
    started = time.perf_counter()
    cnn = predict_dense(model, volume[:, r, c], mean_um=ref.displacement_mean_um, std_um=ref.displacement_std_um, device=device)
    cnn = cnn[rows.start - r.start:rows.stop - r.start, cols.start - c.start:cols.stop - c.start]
    cnn_seconds = time.perf_counter() - started
    started = time.perf_counter()
    speed = _tof_speed(volume, grid, rows, cols, ref.push_lateral_mm, tof)
    return RegionMaps(cnn, speed, cnn_seconds, time.perf_counter() - started)


def tof_alpha(train_refs: Sequence[SequenceRef], concentration_pct: float, *, tof: TofSettings = TofSettings()) -> float:
    """Fit ToF's alpha on the training sequences of one concentration: their mean ToF modulus equals
    their calibrated label. ``ValueError`` when there is no labelled sequence of that concentration."""
    refs = [r for r in train_refs if r.concentration_pct == concentration_pct and r.label_e_kpa is not None]
    if not refs or refs[0].label_e_kpa is None:
        raise ValueError(f"no labelled training sequence of {concentration_pct:g} % to fit ToF's alpha on")
    e_kpa = refs[0].label_e_kpa
    speeds = []
    for ref in refs:
        with SessionReader(ref.path) as reader:
            grid, (rows, cols) = reader.grid, reader.grid.roi_slices(reader.info.roi)
        speeds.append(_tof_speed(read_displacement(ref), grid, rows, cols, ref.push_lateral_mm, tof))
    return fit_alpha(np.concatenate([s.ravel() for s in speeds]), e_kpa)


def evaluate_blocks(model: DenseNet3d, refs: Sequence[SequenceRef], *, alpha: float, out_dir: Path,
                    device: str = "cpu", tof: TofSettings = TofSettings()) -> Evaluation:
    """Pixelwise MAE, Pearson and failure fraction of CNN and ToF over the ROI of every sequence.

    Figures: MAE against stiffness and against push (paper Fig. 7), and mean/std maps per push of
    the CNN and ToF for the concentration with the most test positions (Figs. 6 and 8).
    """
    per_seq = []
    cnn_s = tof_s = 0.0
    positions = 0
    grid = roi = None
    for ref in refs:
        with SessionReader(ref.path) as reader:
            grid, roi = reader.grid, reader.grid.roi_slices(reader.info.roi)
        maps = region_maps(model, ref, grid, *roi, tof=tof, device=device)
        e_tof = tof_modulus_kpa(maps.tof_speed_m_s, alpha=alpha)
        per_seq.append((ref, maps.cnn_kpa, e_tof))
        cnn_s, tof_s, positions = cnn_s + maps.cnn_seconds, tof_s + maps.tof_seconds, positions + maps.cnn_kpa.size
    if not per_seq:
        raise ValueError("no test sequences to evaluate")
    truth = np.concatenate([np.full(c.size, ref.label_e_kpa) for ref, c, _ in per_seq])
    cnn = np.concatenate([c.ravel() for _, c, _ in per_seq])
    tof_e = np.concatenate([t.ravel() for _, _, t in per_seq])
    conc = np.concatenate([np.full(c.size, ref.concentration_pct) for ref, c, _ in per_seq])
    push = np.concatenate([np.full(c.size, ref.push_index) for ref, c, _ in per_seq])
    stiffness = np.concatenate([np.full(c.size, ref.label_e_kpa) for ref, c, _ in per_seq])
    metrics = {
        "cnn": error_summary(cnn, truth),
        "tof": {**error_summary(tof_e, truth), "alpha": alpha, "failed_fraction": float(np.mean(~np.isfinite(tof_e)))},
        "mae_by_concentration": {m: {f"{k:g}": list(v) for k, v in mae_by_group(e, truth, conc).items()}
                                 for m, e in (("cnn", cnn), ("tof", tof_e))},
        "mae_by_push": {m: {f"{k:g}": list(v) for k, v in mae_by_group(e, truth, push).items()}
                        for m, e in (("cnn", cnn), ("tof", tof_e))},
        "throughput": {"cnn_positions_per_s": positions / cnn_s, "tof_positions_per_s": positions / tof_s,
                       "cnn_s_per_sequence_roi": cnn_s / len(per_seq), "tof_s_per_sequence_roi": tof_s / len(per_seq)},
        "test_sequences": len(per_seq),
    }
    by_stiffness = {m: mae_by_group(e, truth, stiffness) for m, e in (("CNN", cnn), ("ToF", tof_e))}
    by_push = {m: mae_by_group(e, truth, push) for m, e in (("CNN", cnn), ("ToF", tof_e))}
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = [
        save_figure(mae_vs(sorted(by_stiffness["CNN"]), {m: [v[k] for k in sorted(v)] for m, v in by_stiffness.items()},
                           xlabel="calibrated modulus (kPa)", title="MAE vs stiffness (Fig. 7)"), out_dir / "mae_vs_stiffness.png"),
        save_figure(mae_vs(sorted(by_push["CNN"]), {m: [v[k] for k in sorted(v)] for m, v in by_push.items()},
                           xlabel="push", title="MAE vs push location (Fig. 7)"), out_dir / "mae_vs_push.png"),
    ]
    if grid is None or roi is None:
        raise ValueError("no test sequences to evaluate")
    figures += _mean_std_figures(per_seq, grid, roi, out_dir)
    return Evaluation(metrics, figures)


def _mean_std_figures(per_seq, grid: ImageGrid, roi: tuple[slice, slice], out_dir: Path) -> list[Path]:
    """Figs. 6 and 8 for one concentration: per push, mean and std over positions of each method."""
    concs = [ref.concentration_pct for ref, _, _ in per_seq]
    conc = max(set(concs), key=concs.count)
    roi_grid = _crop(grid, *roi)
    figures = []
    for push in sorted({ref.push_index for ref, _, _ in per_seq if ref.concentration_pct == conc}):
        chosen = [(c, t) for ref, c, t in per_seq if ref.concentration_pct == conc and ref.push_index == push]
        lateral = next(ref.push_lateral_mm for ref, _, _ in per_seq if ref.push_index == push)
        for name, index in (("cnn", 0), ("tof", 1)):
            stack = np.stack([pair[index] for pair in chosen])
            # Pixels where every estimate failed stay NaN (shown as missing), without a warning.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(stack, axis=0), np.nanstd(stack, axis=0)
            figure = mean_std_maps(mean, std, roi_grid, push_lateral_mm=lateral,
                                   title=f"{name.upper()} {conc:g} % push {push} ({len(chosen)} positions)")
            figures.append(save_figure(figure, out_dir / f"maps_{name}_{conc:g}pct_push{push}.png"))
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


def evaluate_inclusion(model: DenseNet3d, refs: Sequence[SequenceRef], *, modulus_of_batch: Callable[[str], float],
                       alpha: float, out_dir: Path, name: str, device: str = "cpu",
                       tof: TofSettings = TofSettings(), cnn_label: str = "CNN") -> Evaluation:
    """Compounded maps of one inclusion position (9 pushes): MAE inside/outside, Dice, Dice curve."""
    grid, full_truth, full_mask = session_truth_map(refs[0], modulus_of_batch)
    depth_m = (INCLUSION_DEPTH_MM[0] * 1e-3, INCLUSION_DEPTH_MM[1] * 1e-3)
    half_width_m = INCLUSION_HALF_WIDTH_MM * 1e-3
    rows = slice(int(np.searchsorted(grid.depth_m, depth_m[0])), int(np.searchsorted(grid.depth_m, depth_m[1])))
    cols = slice(int(np.searchsorted(grid.lateral_m, -half_width_m)), int(np.searchsorted(grid.lateral_m, half_width_m)))
    truth, mask = full_truth[rows, cols], full_mask[rows, cols]
    cnn_maps, tof_maps = [], []
    for ref in refs:
        maps = region_maps(model, ref, grid, rows, cols, tof=tof, device=device)
        cnn_maps.append(maps.cnn_kpa)
        tof_maps.append(smooth_map(tof_modulus_kpa(maps.tof_speed_m_s, alpha=alpha), _crop(grid, rows, cols)))
    cnn, tof_map = compound_maps(cnn_maps), compound_maps(tof_maps)
    threshold = float((truth[mask].mean() + truth[~mask].mean()) / 2) if mask.any() else float(np.median(truth))
    thresholds = np.linspace(truth.min() * 0.5, truth.max() * 1.3, 40)
    metrics = {"threshold_kpa": threshold, "pushes": len(refs), "cnn_model": cnn_label}
    for label, estimate in (("cnn", cnn), ("tof", tof_map)):
        metrics[label] = {
            "mae_inclusion_kpa": list(mae_kpa(estimate[mask], truth[mask])) if mask.any() else None,
            "mae_background_kpa": list(mae_kpa(estimate[~mask], truth[~mask])),
            "dice": dice(estimate, mask, threshold) if mask.any() else None,
            "failed_fraction": float(np.mean(~np.isfinite(estimate))),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    region = _crop(grid, rows, cols)
    vmax = float(truth.max() * 1.4)
    map_figure = inclusion_maps({"truth": truth, f"{cnn_label} {model.window_px} px": cnn, "ToF": tof_map}, region,
                                inclusion_mask=mask, vmax_kpa=vmax, title=f"{name} (Fig. 9)")
    figures = [save_figure(map_figure, out_dir / f"inclusion_{name}.png")]
    if mask.any():
        curves = {"CNN": dice_curve(cnn, mask, thresholds), "ToF": dice_curve(tof_map, mask, thresholds)}
        metrics["dice_curve"] = {"thresholds_kpa": thresholds.tolist(), **{k: np.asarray(v).tolist() for k, v in curves.items()}}
        dice_figure = dice_curves(thresholds, curves, marked_threshold_kpa=threshold, title=f"{name}: Dice vs threshold (Fig. 10)")
        figures.append(save_figure(dice_figure, out_dir / f"dice_{name}.png"))
    return Evaluation(metrics, figures)
