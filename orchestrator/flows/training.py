"""Training flow: sessions -> split -> CNN (one per seed) -> every method evaluated -> report.

One task per stage: each is minutes of work, so Prefect's bookkeeping costs nothing, and a failed
stage shows where. The CNN and every baseline are scored on the same held-out sequences; nets trained
with further seeds give the spread of the headline figures; inclusion phantoms are mapped by the net
fine-tuned on their other probe positions; optionally, a net per left-out concentration (protocol b).
The split is saved with the model; the report names the split, the calibrations and the dataset
fingerprint, so every number can be traced to the sequences behind it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.fingerprint import dataset_fingerprint
from shearlab.datasets.reader import SequenceRef
from shearlab.datasets.splits import Split, cv_splits, loco_splits
from shearlab.orchestrator.calibration_records import MissingCalibrationError, load_record
from shearlab.orchestrator.progress import Progress
from shearlab.orchestrator.run_labels import parameter_name, started_name
from shearlab.protocols.plans import TrainingPlan, load_training_plan
from shearlab.training.checkpoint import load_checkpoint, save_sigma_calibration
from shearlab.training.config import TrainConfig
from shearlab.training.estimators import CnnEstimator, Estimator, SpeedEstimator, fit_baselines
from shearlab.training.evaluation import evaluate_blocks, evaluate_inclusion, session_truth_map
from shearlab.training.experiments import fine_tune, fold_datasets, train_fold
from shearlab.training.model import model_config_for_window
from shearlab.training.report import write_report
from shearlab.training.truth_windows import TruthMapWindowDataset
from shearlab.training.uncertainty import SigmaCalibration
from shearlab.training.uncertainty_evaluation import evaluate_uncertainty, fit_sigma_calibration

__all__ = ["load_training_plan", "training_flow"]

CAPTIONS = {
    "mae_vs_stiffness.png": "Fig. 7 (left): pixelwise MAE against the calibrated modulus of each test concentration, with "
                            "95 % intervals over probe positions (none where a concentration has one test position).",
    "mae_vs_push.png": "Fig. 7 (right): MAE against push location; pushes 1 and 7 never entered training.",
    "maps_mean.png": "Fig. 6: each method's map over the ROI per push, one colour scale; grey: failed estimates.",
    "maps_spread.png": "Fig. 8: standard deviation over probe positions of each method's map per push.",
    "reliability.png": "Reliability of the CNN's uncertainty on the held-out sequences. Left: how often the label lies inside "
                       "each nominal central interval (on the diagonal: calibrated), with the sigma as calibrated on the "
                       "validation positions and as the raw head gives it. Right: SweiNet's check, the RMS log error "
                       "against the RMS predicted sigma in ten equal-count bins of sigma.",
    "maps_sigma.png": "The CNN's estimate beside its calibrated sigma (kPa), mean over the test positions of one "
                      "concentration, per push; each kind of map on one colour scale.",
}


def _blocks(plan: TrainingPlan) -> list[SequenceRef]:
    return Catalogue(plan.sessions_dir).query(kind="block", labelled=True, qc_passed=None)


@task(name="make-split", cache_policy=NO_CACHE)
def make_split(plan: TrainingPlan, held_out_pct: float | None = None) -> Path:
    """The plan's split (a CV fold or its left-out concentration), or one leaving ``held_out_pct`` out."""
    refs = Catalogue(plan.sessions_dir).query(kind="block", labelled=True)
    if not refs:
        raise ValueError(f"{plan.sessions_dir}: no labelled block sequences to train on")
    if held_out_pct is not None:
        split = loco_splits(refs, held_out_pct=(held_out_pct,), seed=plan.seed)[0]
    elif plan.protocol == "cv":
        split = cv_splits(refs, n_folds=plan.n_folds, seed=plan.seed)[plan.fold]
    else:
        split = loco_splits(refs, held_out_pct=(plan.held_out_pct,), seed=plan.seed)[0]
    path = plan.out_dir / f"split_{split.name}.json"
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    split.save(path)
    return path


def _split_refs(plan: TrainingPlan, split_path: Path) -> tuple[Split, list[SequenceRef], list[SequenceRef], list[SequenceRef]]:
    split = Split.load(split_path)
    train, val, test = split.select(_blocks(plan))
    return split, train, val, test


@task(name="train-cnn", cache_policy=NO_CACHE)
def train_cnn(plan: TrainingPlan, split_path: Path, seed: int) -> Path:
    logger = get_run_logger()
    split, train_refs, val_refs, _ = _split_refs(plan, split_path)
    train_data, val_data = fold_datasets(train_refs, val_refs, plan.window_px, seed=seed, device=plan.device,
                                         windows_per_sequence=plan.windows_per_sequence, region=plan.train_region)
    config = TrainConfig(epochs=plan.epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed, device=plan.device,
                         normalisation="sequence")
    model_config = model_config_for_window(plan.window_px, init_channels=plan.init_channels, growth_rate=plan.growth_rate,
                                           sigma_head=plan.sigma_head)
    checkpoint = plan.out_dir / f"cnn_w{plan.window_px}_{split.name}_seed{seed}.pt"
    progress = Progress(f"training {plan.name} seed {seed}", total=plan.epochs)

    def on_epoch(row: dict[str, float]) -> None:
        val = f", validation MAE {row['val_mae_kpa']:.2f} kPa" if "val_mae_kpa" in row else ""
        logger.info("seed %d epoch %d/%d: train MSE %.1f kPa^2%s", seed, row["epoch"], plan.epochs, row["train_mse_kpa2"], val)
        progress.advance(f"epoch {int(row['epoch'])}")

    result = train_fold(train_data, val_data, model_config=model_config, train_config=config, checkpoint_path=checkpoint,
                        protocol=split.protocol, fold=split.name, split=split.model_dump(mode="json"),
                        dataset_fingerprint=dataset_fingerprint(train_refs + val_refs), on_epoch=on_epoch)
    logger.info("%s seed %d: validation MAE %.2f kPa after %d epochs", split.name, seed, result.val_mae_kpa, plan.epochs)
    return checkpoint


def _alpha_concentration(plan: TrainingPlan, train_refs: list[SequenceRef]) -> float:
    """The plan's alpha concentration, or the nearest one the training split holds (a left-out one is not)."""
    available = sorted({float(r.concentration_pct) for r in train_refs if r.concentration_pct is not None})
    return min(available, key=lambda c: abs(c - plan.alpha_concentration_pct))


def cnn_estimator(checkpoint: Path, plan: TrainingPlan, label: str = "CNN") -> CnnEstimator:
    """The checkpoint's net as the study evaluates it (on the CPU), labelled with its window size."""
    model = load_checkpoint(checkpoint).build_model("cpu")
    return CnnEstimator(model, label=f"{label} ({plan.window_px} px)")


def fine_tune_on_inclusions(plan: TrainingPlan, checkpoint: Path, session: str, refs: list[SequenceRef]) -> Path:
    """Fine-tune on inclusion data (paper: 10 epochs): windows from the phantom's other probe positions,
    labelled by the truth map, centred on the inclusion for ``fine_tune_inclusion_share`` of them."""
    modulus = modulus_of_batch_kpa(plan)
    truths = [session_truth_map(r, modulus)[1] for r in refs]
    data = TruthMapWindowDataset(refs, truths, plan.window_px, epoch_seed=plan.seed,
                                 minority_share=plan.fine_tune_inclusion_share)
    config = TrainConfig(epochs=plan.fine_tune_epochs, batch_size=plan.batch_size, lr=plan.fine_tune_lr or plan.lr,
                         seed=plan.seed, device=plan.device, normalisation="sequence")
    tuned = fine_tune(checkpoint, data, None, checkpoint_path=plan.out_dir / f"{checkpoint.stem}_finetuned_{session}.pt",
                      train_config=config)
    return tuned.checkpoint_path


def modulus_of_batch_kpa(plan: TrainingPlan) -> Callable[[str], float]:
    """Batch id -> its calibrated modulus, kPa, read from the plan's calibration records."""
    def modulus(batch_id: str) -> float:
        return load_record(plan.calibration_dir, batch_id).e_kpa

    return modulus


@task(name="fit-baselines", cache_policy=NO_CACHE)
def fit_baseline_methods(plan: TrainingPlan, split_path: Path) -> list[Estimator]:
    """Every baseline, fitted once on the split's training sequences."""
    _, train_refs, _, _ = _split_refs(plan, split_path)
    return fit_baselines(train_refs, alpha_concentration_pct=_alpha_concentration(plan, train_refs))


@task(name="evaluate-blocks", cache_policy=NO_CACHE)
def evaluate_methods(plan: TrainingPlan, split_path: Path, checkpoints: list[Path],
                     baselines: list[Estimator]) -> tuple[dict[str, Any], list[Path]]:
    """Every method on the split's test sequences; the nets of further seeds by their MAE only."""
    logger = get_run_logger()
    _, _, _, test_refs = _split_refs(plan, split_path)
    result = evaluate_blocks([cnn_estimator(checkpoints[0], plan), *baselines], test_refs, out_dir=plan.out_dir / "figures")
    maes = [result.metrics["methods"]["cnn"]["mae_kpa"][0]]
    for checkpoint in checkpoints[1:]:
        maes.append(evaluate_blocks([cnn_estimator(checkpoint, plan)], test_refs, out_dir=None).metrics["methods"]["cnn"]["mae_kpa"][0])
    logger.info("held-out MAE of the CNN per seed: %s kPa", ", ".join(f"{v:.2f}" for v in maes))
    result.metrics["seed_maes_kpa"] = maes
    return result.metrics, result.figures


@task(name="calibrate-uncertainty", cache_policy=NO_CACHE)
def calibrate_uncertainty(plan: TrainingPlan, split_path: Path, checkpoint: Path) -> None:
    """Fit the net's interval multipliers on the split's validation positions and store them in its checkpoint."""
    _, _, val_refs, _ = _split_refs(plan, split_path)
    try:
        calibration = fit_sigma_calibration(cnn_estimator(checkpoint, plan), val_refs, seed=plan.seed)
    except ValueError as exc:
        # A net with no positive estimate on the validation positions (a few epochs of a tiny net) has no
        # log error to calibrate on: its sigma is then read as a Gaussian, which the report states.
        get_run_logger().warning("%s: sigma not calibrated: %s", checkpoint.name, exc)
        return
    save_sigma_calibration(checkpoint, calibration)
    get_run_logger().info("%s: sigma calibrated on %s; sigma = %.2f x the raw sigma, 95 %% interval +/- %.2f raw sigmas",
                          checkpoint.name, calibration.fitted_on, calibration.sigma_scale, calibration.multiplier(0.95))


@task(name="evaluate-uncertainty", cache_policy=NO_CACHE)
def evaluate_net_uncertainty(plan: TrainingPlan, split_path: Path, checkpoint: Path) -> tuple[dict[str, Any], list[Path]]:
    """Coverage of the net's intervals and its sigma maps on the split's test sequences."""
    _, _, _, test_refs = _split_refs(plan, split_path)
    calibration = load_checkpoint(checkpoint).sigma_calibration or SigmaCalibration.gaussian()
    result = evaluate_uncertainty(cnn_estimator(checkpoint, plan), calibration, test_refs, out_dir=plan.out_dir / "figures")
    return result.metrics, result.figures


@task(name="evaluate-inclusions", cache_policy=NO_CACHE)
def evaluate_inclusions(plan: TrainingPlan, checkpoints: list[Path], seeds: list[int],
                        fitted: list[Estimator]) -> tuple[dict[str, Any], dict[str, list[float]], list[Path]]:
    """Each inclusion phantom's evaluated position mapped by every seed's fine-tuned net and the speed
    estimators (the other baselines read one number per sequence: no map)."""
    baselines: list[Estimator] = [e for e in fitted if isinstance(e, SpeedEstimator)]
    refs = Catalogue(plan.sessions_dir).query(kind="inclusion")
    metrics: dict[str, Any] = {}
    dice: dict[str, list[float]] = {}
    figures: list[Path] = []
    for session in sorted({r.session_id for r in refs}):
        test = [r for r in refs if r.session_id == session and r.position_index == 0]
        tune = [r for r in refs if r.session_id == session and r.position_index != 0]
        dice[session] = []
        for k, checkpoint in enumerate(checkpoints):
            tuned = fine_tune_on_inclusions(plan, checkpoint, session, tune) if tune else checkpoint
            estimators: list[Estimator] = [cnn_estimator(tuned, plan, "CNN fine-tuned" if tune else "CNN"), *(baselines if k == 0 else [])]
            out_dir = plan.out_dir / "figures" / ("" if k == 0 else f"seed{seeds[k]}")
            result = evaluate_inclusion(estimators, test, modulus_of_batch=modulus_of_batch_kpa(plan), out_dir=out_dir,
                                        name=session)
            dice[session].append(result.metrics["methods"]["cnn"]["dice"])
            if k == 0:
                metrics[session] = result.metrics
                figures += result.figures
    return metrics, dice, figures


@task(name="leave-one-concentration-out", cache_policy=NO_CACHE)
def leave_one_out(plan: TrainingPlan, held_out_pct: float) -> dict[str, Any]:
    """Protocol (b) for one concentration: a net trained without it, every method on its test half."""
    split_path = make_split.fn(plan, held_out_pct)
    checkpoint = train_cnn.fn(plan, split_path, plan.seed)
    _, train_refs, _, test_refs = _split_refs(plan, split_path)
    baselines = fit_baselines(train_refs, alpha_concentration_pct=_alpha_concentration(plan, train_refs))
    result = evaluate_blocks([cnn_estimator(checkpoint, plan), *baselines], test_refs, out_dir=None)
    return {"held_out_pct": held_out_pct, "label_kpa": float(np.mean([r.label_e_kpa for r in test_refs])),
            "test_sequences": len(test_refs), "methods": result.metrics["methods"]}


def _calibration_table(plan: TrainingPlan, refs: list[SequenceRef]) -> tuple[list[dict[str, Any]], list[Path], list[str]]:
    """One row per calibrated batch the study's sequences come from, its stress-strain figure, and the
    batches without a calibration record (synthetic data, say)."""
    batches = {r.batch_id for r in refs}
    for info in Catalogue(plan.sessions_dir).sessions.values():
        batches |= {i["batch_id"] for i in info.plan.get("block", {}).get("inclusions", [])}
    rows, figures, missing = [], [], []
    for batch in sorted(batches):
        try:
            record = load_record(plan.calibration_dir, batch)
        except MissingCalibrationError:
            missing.append(batch)
            continue
        figure = plan.calibration_dir / f"stress_strain_{batch}.png"
        rows.append({"batch_id": batch, "concentration_pct": record.concentration_pct, "e_kpa": record.e_kpa,
                     "ci95_kpa": list(record.ci95_kpa), "cylinders": record.cylinders, "sample_sd_kpa": record.sample_sd_kpa,
                     "calibration_id": record.calibration_id, "figure": figure.name if figure.exists() else None})
        if figure.exists():
            figures.append(figure)
    return rows, figures, missing


def _commit() -> str:
    """The git commit of the source, where it runs from a checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"


def _provenance(plan: TrainingPlan, split: Split, checkpoints: list[Path], train_refs: list[SequenceRef],
                started: datetime) -> dict[str, Any]:
    try:
        version = importlib.metadata.version("shearlab")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "software": f"shearlab {version} (commit {_commit()}), torch {torch.__version__}, Python {platform.python_version()}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {'CUDA' if torch.cuda.is_available() else 'no GPU'}",
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "sessions": str(plan.sessions_dir.resolve()),
        "world": str(plan.world) if plan.world else "not recorded",
        "split": f"{split.name} ({split.protocol}, seed {split.seed}): {len(split.train)} train / {len(split.val)} "
                 f"validation / {len(split.test)} test sequences",
        "dataset fingerprint": dataset_fingerprint(train_refs),
        "checkpoints": ", ".join(str(c) for c in checkpoints),
    }


def _run_name() -> str:
    return started_name(f"training {parameter_name('plan_path', load_training_plan)}")


@flow(name="train-and-evaluate", flow_run_name=_run_name, log_prints=True)
def training_flow(plan_path: Path) -> dict[str, Any]:
    """Train the CNN on the plan's split (one net per seed), evaluate it and every baseline, write
    ``report.html``, ``summary.md`` and ``metrics.json``."""
    started = datetime.now(UTC)
    plan = load_training_plan(plan_path)
    split_path = make_split(plan)
    split, train_refs, _, test_refs = _split_refs(plan, split_path)
    seeds = [plan.seed + k for k in range(plan.repeats)]
    checkpoints = [train_cnn(plan, split_path, seed) for seed in seeds]
    if plan.sigma_head:
        for checkpoint in checkpoints:
            calibrate_uncertainty(plan, split_path, checkpoint)
    baselines = fit_baseline_methods(plan, split_path)
    blocks, figures = evaluate_methods(plan, split_path, checkpoints, baselines)
    metrics: dict[str, Any] = {"blocks": blocks}
    if plan.sigma_head:
        metrics["uncertainty"], uncertainty_figures = evaluate_net_uncertainty(plan, split_path, checkpoints[0])
        figures += uncertainty_figures
    seed_table: dict[str, Any] = {"seeds": seeds, "cnn_mae_kpa": blocks.pop("seed_maes_kpa"), "inclusion_dice": {}}
    if plan.evaluate_inclusions:
        metrics["inclusions"], seed_table["inclusion_dice"], inclusion_figures = evaluate_inclusions(
            plan, checkpoints, seeds, baselines)
        figures += inclusion_figures
    metrics["seeds"] = seed_table
    metrics["loco"] = [leave_one_out(plan, c) for c in plan.loco_concentrations_pct]
    metrics["calibration"], calibration_figures, uncalibrated = _calibration_table(plan, train_refs + test_refs)
    metrics["study"] = {
        "scale": plan.description or plan.name, "window_px": plan.window_px, "epochs": plan.epochs,
        "protocol_text": (f"{plan.n_folds}-fold cross-validation over probe positions, fold {plan.fold}"
                          if plan.protocol == "cv" else f"{plan.held_out_pct:g} % left out"),
        "alpha_concentration_pct": _alpha_concentration(plan, train_refs),
        "train_sequences": len(train_refs), "test_sequences": len(test_refs),
    }
    metrics["provenance"] = _provenance(plan, split, checkpoints, train_refs, started)
    if uncalibrated:
        metrics["provenance"]["batches without a calibration record"] = ", ".join(uncalibrated)
    captions = {**CAPTIONS, **{f"inclusion_{s}.png": f"Fig. 9: {s}, truth and each method's map on one colour scale; "
                                                      "white: the true outline." for s in metrics.get("inclusions", {})},
                **{f"dice_{s}.png": f"Fig. 10: {s}, Dice against the binarisation threshold; dashed: the mid-modulus threshold."
                   for s in metrics.get("inclusions", {})}}
    report = write_report(plan.out_dir, metrics, figures + calibration_figures, captions=captions)
    written = json.loads((report.parent / "metrics.json").read_text())
    create_table_artifact(key="training-metrics", description=f"training {plan.name}: held-out MAE per method", table=[
        {"method": m["label"], "MAE kPa": round(m["mae_kpa"][0], 2),
         "95 % interval": f"{m['mae_kpa'][1]:.2f}-{m['mae_kpa'][2]:.2f}" if m["mae_kpa"][1] is not None else "",
         "Pearson": round(m["pearson"], 3) if m["pearson"] is not None else None}
        for m in written["blocks"]["methods"].values()
    ])
    create_markdown_artifact(key="training-report", markdown=(report.parent / "summary.md").read_text() + f"\n\nReport: `{report}`",
                             description="the study's answer")
    return {"report": str(report), "metrics": written}
