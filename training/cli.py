"""Command line for training, evaluation and maps; the lead mounts ``app`` under the ``shearlab`` CLI.

Thin wrappers: data come from ``shearlab.datasets`` (a folder of session files and a split JSON), the work
is done by this package's functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.fingerprint import dataset_fingerprint
from shearlab.datasets.reader import SequenceRef, SessionReader, read_displacement
from shearlab.datasets.splits import Split
from shearlab.training.checkpoint import load_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.estimators import CnnEstimator, fit_baselines
from shearlab.training.evaluation import evaluate_blocks
from shearlab.training.experiments import train_fold
from shearlab.training.figures import map_panels, save_figure
from shearlab.training.inference import predict_dense
from shearlab.training.model import model_config_for_window
from shearlab.training.report import write_report
from shearlab.training.windows import WindowDataset

app = typer.Typer(help="Train the spatio-temporal CNN, evaluate it, and draw elasticity maps.", no_args_is_help=True)


def _split_refs(data_dir: Path, split_path: Path) -> tuple[Split, list[SequenceRef], list[SequenceRef], list[SequenceRef]]:
    split = Split.load(split_path)
    catalogue = Catalogue(data_dir)
    train, val, test = split.select(catalogue.query(labelled=True, qc_passed=None))
    return split, train, val, test


@app.command()
def train(
    data_dir: Path = typer.Argument(..., help="folder of session files"),
    split_path: Path = typer.Option(..., "--split", help="split JSON (datasets.splits.Split)"),
    out: Path = typer.Option(..., "--out", help="checkpoint path; an existing one is resumed"),
    window: int = typer.Option(65, help="window side: 65, 33, 17, 9 or 5 px"),
    epochs: int = typer.Option(250),
    batch_size: int = typer.Option(250),
    lr: float = typer.Option(1e-4),
    init_channels: int = typer.Option(16),
    growth_rate: int = typer.Option(16),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    num_workers: int = typer.Option(0),
) -> None:
    """Train one fold of a split (CV or leave-one-concentration-out) with per-sequence normalisation."""
    split, train_refs, val_refs, _ = _split_refs(data_dir, split_path)
    train_data = WindowDataset(train_refs, window, epoch_seed=seed, normalisation="sequence", augment=True)
    val_data = WindowDataset(val_refs, window, epoch_seed=seed + 1, normalisation="sequence") if val_refs else None
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,  # type: ignore[arg-type]
                         normalisation="sequence", num_workers=num_workers)
    model_config = model_config_for_window(window, init_channels=init_channels, growth_rate=growth_rate)
    result = train_fold(train_data, val_data, model_config=model_config, train_config=config, checkpoint_path=out,
                        protocol=split.protocol, fold=split.name, split=split.model_dump(mode="json"),
                        dataset_fingerprint=dataset_fingerprint(train_refs + val_refs))
    typer.echo(f"{out}: {len(result.train.history)} epochs, validation MAE {result.val_mae_kpa:.2f} "
               f"+/- {result.val_mae_std_kpa:.2f} kPa")


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="checkpoint written by `train`"),
    data_dir: Path = typer.Argument(..., help="folder of session files"),
    split_path: Path = typer.Option(..., "--split", help="split JSON; its test sequences are evaluated"),
    out_dir: Path = typer.Option(Path("report"), "--out"),
    alpha_concentration_pct: float = typer.Option(10.0, help="ToF's alpha is fitted on the training sequences of this concentration"),
    device: str = typer.Option("cpu"),
) -> None:
    """The CNN and every baseline over the ROI of every test sequence: MAE with intervals, by stiffness and
    push; HTML report."""
    state = load_checkpoint(checkpoint)
    model = state.build_model(device)
    split, train_refs, _, test_refs = _split_refs(data_dir, split_path)
    try:
        baselines = fit_baselines(train_refs, alpha_concentration_pct=alpha_concentration_pct)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--alpha-concentration-pct") from None
    cnn = CnnEstimator(model, label=f"CNN ({model.window_px} px)", device=device)
    result = evaluate_blocks([cnn, *baselines], test_refs, out_dir=out_dir / "figures")
    metrics = {"blocks": result.metrics,
               "study": {"scale": f"shearlab evaluate {checkpoint.name}", "window_px": model.window_px,
                         "epochs": state.epochs_done, "protocol_text": f"split {split.name} ({split.protocol})",
                         "alpha_concentration_pct": alpha_concentration_pct},
               "provenance": {"checkpoint": str(checkpoint), "dataset fingerprint": state.dataset_fingerprint,
                              "split": split.name}}
    path = write_report(out_dir, metrics, result.figures)
    methods = result.metrics["methods"]
    typer.echo(f"{path}: MAE " + ", ".join(f"{m['label']} {m['mae_kpa'][0]:.2f} kPa" for m in methods.values()))


@app.command()
def predict(
    session: Path = typer.Argument(..., help="session file"),
    checkpoint: Path = typer.Option(..., "--checkpoint"),
    out: Path = typer.Option(Path("map.png"), "--out", help="PNG; the map is also saved next to it as .npy"),
    key: str = typer.Option("", help="sequence key (default: the first complete sequence)"),
    device: str = typer.Option("cpu"),
    tile_px: int = typer.Option(128, help="output tile side, bounds memory"),
) -> None:
    """Dense full-field elasticity map of one sequence."""
    state = load_checkpoint(checkpoint)
    model = state.build_model(device)
    with SessionReader(session) as reader:
        refs = reader.sequences()
        grid = reader.grid
    chosen = [r for r in refs if r.has_displacement and (not key or r.key == key)]
    if not chosen:
        raise typer.BadParameter(f"no sequence {key or 'with displacement'} in {session}")
    ref = chosen[0]
    e_map = predict_dense(model, read_displacement(ref), mean_um=ref.displacement_mean_um,
                          std_um=ref.displacement_std_um, tile_px=tile_px, device=device)
    np.save(out.with_suffix(".npy"), e_map)
    finite = e_map[np.isfinite(e_map)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    save_figure(map_panels({ref.key: {f"CNN ({model.window_px} px)": e_map}}, grid, vmax_kpa=vmax), out)
    typer.echo(f"{out}: median {np.nanmedian(e_map):.1f} kPa over {np.isfinite(e_map).sum()} pixels")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
