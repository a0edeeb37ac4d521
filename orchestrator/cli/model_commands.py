"""``shearlab train``, ``evaluate`` and ``predict``: thin wrappers over the training package.

torch is imported when one of them runs, so the rest of the command line works on an install without the
``train`` extra (a missing torch ends the command with exit 3 and the pip line that installs it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from shearlab.orchestrator.cli.errors import ExitCode, UserError
from shearlab.orchestrator.cli.output import emit, record_table, rows_table, say
from shearlab.orchestrator.cli.rig_commands import JsonFlag
from shearlab.orchestrator.cli.runtime import steps

if TYPE_CHECKING:
    from shearlab.datasets.reader import SequenceRef
    from shearlab.datasets.splits import Split

app = typer.Typer(rich_markup_mode=None)

DataDir = Annotated[Path, typer.Argument(help="Folder of session files.", metavar="DATA_DIR", show_default=False)]
SplitFile = Annotated[Path, typer.Option("--split", help="Split JSON (datasets.splits.Split).", show_default=False)]
Device = Literal["auto", "cpu", "cuda"]


def _split_refs(data_dir: Path, split_path: Path) -> tuple[Split, list[SequenceRef], list[SequenceRef], list[SequenceRef]]:
    from shearlab.datasets.catalogue import Catalogue
    from shearlab.datasets.splits import Split

    split = Split.load(split_path)
    catalogue = Catalogue(data_dir)
    try:
        train, val, test = split.select(catalogue.query(labelled=True, qc_passed=None))
    except KeyError as exc:
        raise UserError(f"{split_path}: {exc.args[0]} in {data_dir}", ExitCode.DATA) from None
    return split, train, val, test


@app.command()
def train(
    data_dir: DataDir,
    split_path: SplitFile,
    out: Annotated[Path, typer.Option("--out", help="Checkpoint to write; an existing one is resumed.", show_default=False)],
    window: Annotated[Literal[65, 33, 17, 9, 5], typer.Option(help="Window side, px.")] = 65,
    epochs: Annotated[int, typer.Option(help="Epochs in all (a resumed run stops at the same epoch).", min=1)] = 250,
    batch_size: Annotated[int, typer.Option(help="Windows per optimiser step.", min=1)] = 250,
    lr: Annotated[float, typer.Option(help="Adam learning rate (halved every 50 epochs after epoch 150).", min=0)] = 1e-4,
    init_channels: Annotated[int, typer.Option(help="Channels of the initial convolutions.", min=1)] = 16,
    growth_rate: Annotated[int, typer.Option(help="Channels each dense layer adds.", min=1)] = 16,
    seed: Annotated[int, typer.Option(help="Seed of window draws, order and augmentation.")] = 0,
    device: Annotated[Device, typer.Option(help="auto: CUDA when present, else CPU.")] = "auto",
    num_workers: Annotated[int, typer.Option(help="DataLoader worker processes.", min=0)] = 0,
    sigma: Annotated[bool, typer.Option("--sigma/--no-sigma", help="Also predict each estimate's uncertainty (a sigma head), "
                                                                   "calibrated on the split's validation positions.")] = True,
    json_output: JsonFlag = False,
) -> None:
    """Train one fold of a split (CV or leave-one-concentration-out) with per-sequence normalisation;
    one line per epoch."""
    from pydantic import ValidationError

    from shearlab.datasets.fingerprint import dataset_fingerprint
    from shearlab.protocols.config_files import describe_validation_error
    from shearlab.protocols.output_files import check_output
    from shearlab.training.checkpoint import load_checkpoint
    from shearlab.training.config import TrainConfig
    from shearlab.training.experiments import fold_datasets, train_fold
    from shearlab.training.model import model_config_for_window

    try:
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, normalisation="sequence",
                             num_workers=num_workers)
    except ValidationError as exc:
        raise UserError("; ".join(describe_validation_error(exc)), ExitCode.USAGE) from None
    model_config = model_config_for_window(window, init_channels=init_channels, growth_rate=growth_rate, sigma_head=sigma)
    check_output(out, inputs=[split_path], force=True)
    if out.exists():
        load_checkpoint(out)  # resumed below: a file that is no checkpoint of ours is refused before any work
    split, train_refs, val_refs, _ = _split_refs(data_dir, split_path)
    train_data, val_data = fold_datasets(train_refs, val_refs, window, seed=seed, device=device)
    with steps("training", epochs) as progress:
        def on_epoch(row: dict[str, float]) -> None:
            val = f", validation MAE {row['val_mae_kpa']:.2f} kPa" if "val_mae_kpa" in row else ""
            progress.console.print(f"epoch {int(row['epoch'])}/{epochs}: train MSE {row['train_mse_kpa2']:.1f} kPa^2{val}, "
                                   f"{row['windows_per_s']:.0f} windows/s", markup=False)
            progress.update(progress.task_ids[0], completed=int(row["epoch"]))

        result = train_fold(train_data, val_data, model_config=model_config, train_config=config, checkpoint_path=out,
                            protocol=split.protocol, fold=split.name, split=split.model_dump(mode="json"),
                            dataset_fingerprint=dataset_fingerprint(train_refs + val_refs), on_epoch=on_epoch)
    report = {"checkpoint": str(out), "epochs": len(result.train.history), "val_mae_kpa": result.val_mae_kpa,
              "val_mae_std_kpa": result.val_mae_std_kpa}
    if sigma and val_refs:
        from shearlab.training.checkpoint import save_sigma_calibration
        from shearlab.training.estimators import CnnEstimator
        from shearlab.training.uncertainty_evaluation import fit_sigma_calibration

        calibration = fit_sigma_calibration(CnnEstimator(result.train.model.cpu()), val_refs, seed=seed)
        save_sigma_calibration(out, calibration)
        report["sigma_scale"] = calibration.sigma_scale
    emit(report, record_table("training", report), as_json=json_output)


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint written by train.", metavar="CHECKPOINT", show_default=False)],
    data_dir: DataDir,
    split_path: Annotated[Path, typer.Option("--split", help="Split JSON; its test sequences are evaluated.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, metrics.json and figures.")] = Path("report"),
    alpha_concentration_pct: Annotated[float, typer.Option(
        help="ToF's alpha is fitted on the training sequences of this concentration, %.")] = 10.0,
    device: Annotated[Device, typer.Option(help="auto: CUDA when present, else CPU.")] = "cpu",
    force: Annotated[bool, typer.Option("--force", help="Replace a report already in --out.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """The CNN and every baseline over the ROI of every test sequence: MAE with 95 % intervals, by
    stiffness and push, inside and outside the push zone; HTML report."""
    from shearlab.protocols.output_files import check_output
    from shearlab.training.checkpoint import load_checkpoint
    from shearlab.training.estimators import CnnEstimator, fit_baselines
    from shearlab.training.evaluation import evaluate_blocks
    from shearlab.training.report import write_report

    for name in ("report.html", "metrics.json"):
        check_output(out_dir / name, inputs=[checkpoint, split_path], force=force)
    state = load_checkpoint(checkpoint)
    model = state.build_model(device)
    split, train_refs, _, test_refs = _split_refs(data_dir, split_path)
    try:
        baselines = fit_baselines(train_refs, alpha_concentration_pct=alpha_concentration_pct)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--alpha-concentration-pct") from None
    cnn = CnnEstimator(model, label=f"CNN ({model.window_px} px)", device=device)
    with steps(f"evaluating {len(test_refs)} test sequences", None):
        result = evaluate_blocks([cnn, *baselines], test_refs, out_dir=out_dir / "figures")
    metrics = {"blocks": result.metrics,
               "study": {"scale": f"shearlab evaluate {checkpoint.name}", "window_px": model.window_px,
                         "epochs": state.epochs_done, "protocol_text": f"split {split.name} ({split.protocol})",
                         "alpha_concentration_pct": alpha_concentration_pct},
               "provenance": {"checkpoint": str(checkpoint), "dataset fingerprint": state.dataset_fingerprint,
                              "split": split.name}}
    figures = list(result.figures)
    if model.sigma_head is not None:
        from shearlab.training.uncertainty import SigmaCalibration
        from shearlab.training.uncertainty_evaluation import evaluate_uncertainty

        uncertainty = evaluate_uncertainty(cnn, state.sigma_calibration or SigmaCalibration.gaussian(), test_refs,
                                           out_dir=out_dir / "figures")
        metrics["uncertainty"] = uncertainty.metrics
        figures += uncertainty.figures
    path = write_report(out_dir, metrics, figures)
    rows = [{"method": m["label"], "mae_kpa": m["mae_kpa"][0], "mae_low_kpa": m["mae_kpa"][1], "mae_high_kpa": m["mae_kpa"][2],
             "pearson": m["pearson"], "failed_fraction": m["failed_fraction"]} for m in result.metrics["methods"].values()]
    emit({"report": str(path), "methods": rows}, rows_table(f"{len(test_refs)} test sequences", rows), as_json=json_output)
    if not json_output:
        say(f"report: {path}")


@app.command()
def predict(
    session: Annotated[Path, typer.Argument(help="Session file.", metavar="SESSION", show_default=False)],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint written by train.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="PNG to write; the map is also saved next to it as .npy (the sigma map as "
                                                    "_sigma.npy).")] = Path("map.png"),
    key: Annotated[str, typer.Option(help="Sequence key, e.g. p000_push4 (default: the first complete sequence).")] = "",
    device: Annotated[Device, typer.Option(help="auto: CUDA when present, else CPU.")] = "cpu",
    tile_px: Annotated[int, typer.Option(help="Output tile side, px; bounds memory.", min=1)] = 128,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT and its .npy if they exist.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Dense full-field elasticity map of one sequence; with a net that predicts its uncertainty, the sigma
    map beside it (kPa, calibrated as the checkpoint says)."""
    import numpy as np

    from shearlab.datasets.reader import SessionReader, read_displacement
    from shearlab.protocols.output_files import atomic_output, check_output
    from shearlab.training.checkpoint import CheckpointError, load_checkpoint
    from shearlab.training.figures import estimate_sigma_panels, map_panels, save_figure
    from shearlab.training.inference import predict_dense, predict_dense_distribution
    from shearlab.training.uncertainty import SigmaCalibration, sigma_kpa

    for path in (out, out.with_suffix(".npy"), out.with_name(out.stem + "_sigma.npy")):
        check_output(path, inputs=[session, checkpoint], force=force)
    state = load_checkpoint(checkpoint)
    model = state.build_model(device)
    with SessionReader(session) as reader:
        refs = reader.sequences()
        grid = reader.grid
    chosen = [r for r in refs if r.has_displacement and (not key or r.key == key)]
    if not chosen:
        raise UserError(f"{session}: no complete sequence {key or 'with displacement'}", ExitCode.DATA)
    ref = chosen[0]
    _, depth, lateral = ref.shape
    if min(depth, lateral) < model.window_px:
        raise CheckpointError(checkpoint, f"its model takes {model.window_px} px windows; {session} images {depth} x {lateral} px")
    started = time.perf_counter()
    sigma_map = None
    with steps(f"map of {ref.key} ({model.window_px} px window), tiles", None) as progress:
        def on_tile(done: int, total: int) -> None:
            progress.update(progress.task_ids[0], completed=done, total=total)

        options = {"mean_um": ref.displacement_mean_um, "std_um": ref.displacement_std_um, "tile_px": tile_px, "device": device,
                   "on_tile": on_tile}
        if model.sigma_head is not None:
            e_map, raw_sigma = predict_dense_distribution(model, read_displacement(ref), **options)  # type: ignore[arg-type]
            calibration = state.sigma_calibration or SigmaCalibration.gaussian()
            sigma_map = sigma_kpa(e_map, calibration.sigma(raw_sigma)).astype(np.float32)
        else:
            e_map = predict_dense(model, read_displacement(ref), **options)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    with atomic_output(out.with_suffix(".npy")) as tmp:
        np.save(tmp, e_map)
    finite = e_map[np.isfinite(e_map)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    label = f"CNN ({model.window_px} px)"
    report = {"session": str(session), "key": ref.key, "window_px": model.window_px, "png": str(out),
              "npy": str(out.with_suffix(".npy")), "median_kpa": float(np.nanmedian(e_map)),
              "pixels": int(np.isfinite(e_map).sum()), "seconds": round(seconds, 2)}
    if sigma_map is None:
        with atomic_output(out) as tmp:
            save_figure(map_panels({ref.key: {label: e_map}}, grid, vmax_kpa=vmax), tmp)
    else:
        sigma_path = out.with_name(out.stem + "_sigma.npy")
        with atomic_output(sigma_path) as tmp:
            np.save(tmp, sigma_map)
        finite_sigma = sigma_map[np.isfinite(sigma_map)]
        sigma_vmax = float(np.percentile(finite_sigma, 99)) if finite_sigma.size else 1.0
        with atomic_output(out) as tmp:
            save_figure(estimate_sigma_panels({ref.key: (e_map, sigma_map)}, grid, vmax_kpa=vmax, sigma_vmax_kpa=sigma_vmax,
                                              title=f"{label}: estimate and its sigma"), tmp)
        report.update(sigma_npy=str(sigma_path), median_sigma_kpa=float(np.nanmedian(sigma_map)),
                      sigma_calibrated=state.sigma_calibration is not None)
    emit(report, record_table("elasticity map", report), as_json=json_output)
