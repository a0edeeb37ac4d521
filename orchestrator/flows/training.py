"""Training flow: sessions -> split -> CNN -> evaluation against ToF -> report.

One task per stage: each is minutes of work, so Prefect's bookkeeping costs nothing, and a failed
stage shows where. The split is saved with the model; the report names the split and the dataset
fingerprint, so every number can be traced to the sequences behind it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.fingerprint import dataset_fingerprint
from shearlab.datasets.splits import Split, cv_splits, loco_splits
from shearlab.orchestrator.calibration_records import load_record
from shearlab.orchestrator.progress import Progress
from shearlab.orchestrator.run_labels import parameter_name, started_name
from shearlab.protocols.plans import TrainingPlan, load_training_plan
from shearlab.training.checkpoint import load_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.evaluation import evaluate_blocks, evaluate_inclusion, session_truth_map, tof_alpha
from shearlab.training.experiments import FINE_TUNE_EPOCHS, fine_tune, train_fold
from shearlab.training.model import model_config_for_window
from shearlab.training.report import write_report
from shearlab.training.truth_windows import TruthMapWindowDataset
from shearlab.training.windows import WindowDataset

__all__ = ["load_training_plan", "training_flow"]


@task(name="make-split", cache_policy=NO_CACHE)
def make_split(plan: TrainingPlan) -> Path:
    refs = Catalogue(plan.sessions_dir).query(kind="block", labelled=True)
    if not refs:
        raise ValueError(f"{plan.sessions_dir}: no labelled block sequences to train on")
    if plan.protocol == "cv":
        split = cv_splits(refs, n_folds=plan.n_folds, seed=plan.seed)[plan.fold]
    else:
        split = loco_splits(refs, held_out_pct=(plan.held_out_pct,), seed=plan.seed)[0]
    path = plan.out_dir / f"split_{split.name}.json"
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    split.save(path)
    return path


def _split_refs(plan: TrainingPlan, split_path: Path):
    split = Split.load(split_path)
    return split, *split.select(Catalogue(plan.sessions_dir).query(kind="block", labelled=True, qc_passed=None))


@task(name="train-cnn", cache_policy=NO_CACHE)
def train_cnn(plan: TrainingPlan, split_path: Path) -> Path:
    split, train_refs, val_refs, _ = _split_refs(plan, split_path)
    train_data = WindowDataset(train_refs, plan.window_px, epoch_seed=plan.seed, normalisation="sequence", augment=True)
    val_data = WindowDataset(val_refs, plan.window_px, epoch_seed=plan.seed + 1, normalisation="sequence") if val_refs else None
    config = TrainConfig(epochs=plan.epochs, batch_size=plan.batch_size, lr=plan.lr, seed=plan.seed, device=plan.device,
                         normalisation="sequence")
    model_config = model_config_for_window(plan.window_px, init_channels=plan.init_channels, growth_rate=plan.growth_rate)
    checkpoint = plan.out_dir / f"cnn_w{plan.window_px}_{split.name}.pt"
    logger = get_run_logger()
    progress = Progress(f"training {plan.name}", total=plan.epochs)

    def on_epoch(row: dict[str, float]) -> None:
        val = f", validation MAE {row['val_mae_kpa']:.2f} kPa" if "val_mae_kpa" in row else ""
        logger.info("epoch %d/%d: train MSE %.1f kPa^2%s", row["epoch"], plan.epochs, row["train_mse_kpa2"], val)
        progress.advance(f"epoch {int(row['epoch'])}")

    train_fold(train_data, val_data, model_config=model_config, train_config=config, checkpoint_path=checkpoint,
               protocol=split.protocol, fold=split.name, split=split.model_dump(mode="json"),
               dataset_fingerprint=dataset_fingerprint(train_refs + val_refs), on_epoch=on_epoch)
    return checkpoint


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(plan: TrainingPlan, split_path: Path, checkpoint: Path) -> Path:
    logger = get_run_logger()
    split, train_refs, _, test_refs = _split_refs(plan, split_path)
    state = load_checkpoint(checkpoint)
    model = state.build_model("cpu")
    alpha = tof_alpha(train_refs, plan.alpha_concentration_pct)
    logger.info("ToF alpha fitted on the training sequences of %g %%: %.3f", plan.alpha_concentration_pct, alpha)
    blocks = evaluate_blocks(model, test_refs, alpha=alpha, out_dir=plan.out_dir / "figures")
    metrics: dict[str, Any] = {"blocks": blocks.metrics}
    figures = list(blocks.figures)
    if plan.evaluate_inclusions:
        def modulus_of_batch(batch_id: str) -> float:
            return load_record(plan.calibration_dir, batch_id).e_kpa

        inclusion_refs = Catalogue(plan.sessions_dir).query(kind="inclusion")
        for session in sorted({r.session_id for r in inclusion_refs}):
            refs = [r for r in inclusion_refs if r.session_id == session]
            test = [r for r in refs if r.position_index == 0]
            tune = [r for r in refs if r.position_index != 0]
            chosen, label = model, "CNN"
            if tune:
                chosen = fine_tune_on_inclusions(plan, checkpoint, tune, modulus_of_batch, session)
                label = "CNN fine-tuned"
            result = evaluate_inclusion(chosen, test, modulus_of_batch=modulus_of_batch, alpha=alpha,
                                        out_dir=plan.out_dir / "figures", name=session, cnn_label=label)
            metrics.setdefault("inclusions", {})[session] = result.metrics
            figures += result.figures
    metrics["run"] = {"split": split.name, "protocol": split.protocol, "checkpoint": str(checkpoint),
                      "window_px": plan.window_px, "dataset_fingerprint": state.dataset_fingerprint,
                      "epochs": plan.epochs, "train_sequences": len(train_refs), "test_sequences": len(test_refs)}
    return write_report(plan.out_dir, metrics, figures)


def fine_tune_on_inclusions(plan: TrainingPlan, checkpoint: Path, refs: list, modulus_of_batch: Any, session: str) -> Any:
    """Paper: fine-tune on inclusion data for 10 epochs. Windows from the phantom's other probe
    positions, labelled by the truth map; the evaluated position is never seen."""
    truths = [session_truth_map(r, modulus_of_batch)[1] for r in refs]
    data = TruthMapWindowDataset(refs, truths, plan.window_px, epoch_seed=plan.seed)
    config = TrainConfig(epochs=FINE_TUNE_EPOCHS, batch_size=plan.batch_size, lr=plan.lr, seed=plan.seed,
                         device=plan.device, normalisation="sequence", lr_decay_start_epoch=FINE_TUNE_EPOCHS)
    tuned = fine_tune(checkpoint, data, None, checkpoint_path=plan.out_dir / f"{checkpoint.stem}_finetuned_{session}.pt",
                      train_config=config)
    return load_checkpoint(tuned.checkpoint_path).build_model("cpu")


def _run_name() -> str:
    return started_name(f"training {parameter_name('plan_path', load_training_plan)}")


@flow(name="train-and-evaluate", flow_run_name=_run_name, log_prints=True)
def training_flow(plan_path: Path) -> dict[str, Any]:
    """Train the CNN on the plan's split, evaluate it and ToF, write ``report.html`` and ``metrics.json``."""
    plan = load_training_plan(plan_path)
    split_path = make_split(plan)
    checkpoint = train_cnn(plan, split_path)
    report = evaluate(plan, split_path, checkpoint)
    metrics = json.loads((report.parent / "metrics.json").read_text())
    cnn, tof = metrics["blocks"]["cnn"], metrics["blocks"]["tof"]
    create_table_artifact(key="training-metrics", description=f"training {plan.name}", table=[
        {"method": name, "MAE kPa": round(m["mae_kpa"], 2), "std kPa": round(m["mae_std_kpa"], 2), "Pearson": round(m["pearson"], 3)}
        for name, m in (("CNN", cnn), ("ToF", tof))
    ])
    create_markdown_artifact(key="training-report", markdown=f"Report: `{report}`", description="report location")
    return {"report": str(report), "metrics": metrics}
