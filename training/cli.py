"""Command line for training, evaluation and maps; the lead mounts ``app`` under the ``shearlab`` CLI.

Thin wrappers: data come from ``shearlab.datasets`` (a folder of session files and a split JSON), the work
is done by this package's functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import typer
from pydantic import ValidationError

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.errors import NotASessionFileError, SessionFileError
from shearlab.datasets.fingerprint import dataset_fingerprint
from shearlab.datasets.reader import SequenceRef, SessionReader, read_displacement
from shearlab.datasets.splits import Split
from shearlab.protocols.config_files import ConfigFileError, describe_validation_error
from shearlab.protocols.output_files import atomic_output, check_output
from shearlab.training.checkpoint import CheckpointError, load_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.evaluation import evaluate_blocks, tof_alpha
from shearlab.training.experiments import train_fold
from shearlab.training.figures import inclusion_maps, save_figure
from shearlab.training.inference import predict_dense
from shearlab.training.model import model_config_for_window
from shearlab.training.report import write_report
from shearlab.training.windows import WindowDataset

app = typer.Typer(help="Train the spatio-temporal CNN, evaluate it, and draw elasticity maps.", no_args_is_help=True)


def _split_refs(data_dir: Path, split_path: Path) -> tuple[Split, list[SequenceRef], list[SequenceRef], list[SequenceRef]]:
    """The split and its sequences in ``data_dir``; a split file or data folder that does not fit says which and why."""
    try:
        split = Split.load(split_path)
    except FileNotFoundError:
        raise ConfigFileError(split_path, ["file not found"]) from None
    except OSError as exc:
        raise ConfigFileError(split_path, [f"cannot be read ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise ConfigFileError(split_path, ["not UTF-8 text: a split is a JSON file"]) from None
    except ValidationError as exc:
        raise ConfigFileError(split_path, describe_validation_error(exc)) from None
    if not data_dir.is_dir():
        raise NotASessionFileError(data_dir, "not a folder of session files")
    catalogue = Catalogue(data_dir)
    try:
        train, val, test = split.select(catalogue.query(labelled=True, qc_passed=None))
    except KeyError as exc:
        raise ConfigFileError(split_path, [f"does not fit the sessions in {data_dir}: {exc.args[0]}"]) from None
    return split, train, val, test


@app.command()
def train(
    data_dir: Path = typer.Argument(..., help="folder of session files"),
    split_path: Path = typer.Option(..., "--split", help="split JSON (datasets.splits.Split)"),
    out: Path = typer.Option(..., "--out", help="checkpoint path; an existing one is resumed"),
    window: int = typer.Option(65, help="window side: 65, 33, 17, 9 or 5 px"),
    epochs: int = typer.Option(250, min=1),
    batch_size: int = typer.Option(250, min=1),
    lr: float = typer.Option(1e-4),
    init_channels: int = typer.Option(16, min=1),
    growth_rate: int = typer.Option(16, min=1),
    seed: int = typer.Option(0, min=0),
    device: Literal["auto", "cpu", "cuda"] = typer.Option("auto"),
    num_workers: int = typer.Option(0, min=0),
) -> None:
    """Train one fold of a split (CV or leave-one-concentration-out) with per-sequence normalisation."""
    try:
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
                             normalisation="sequence", num_workers=num_workers)
        model_config = model_config_for_window(window, init_channels=init_channels, growth_rate=growth_rate)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(describe_validation_error(exc))) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from None
    check_output(out, inputs=[split_path], force=True)
    if out.exists():
        load_checkpoint(out)  # resumed below: a file that is no checkpoint of ours is refused before any work
    split, train_refs, val_refs, _ = _split_refs(data_dir, split_path)
    train_data = WindowDataset(train_refs, window, epoch_seed=seed, normalisation="sequence", augment=True)
    val_data = WindowDataset(val_refs, window, epoch_seed=seed + 1, normalisation="sequence") if val_refs else None
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
    device: Literal["cpu", "cuda"] = typer.Option("cpu"),
    force: bool = typer.Option(False, "--force", help="Replace an existing report in --out."),
) -> None:
    """CNN and ToF over the ROI of every test sequence: MAE, Pearson, MAE by stiffness and push; HTML report."""
    for name in ("report.html", "metrics.json"):
        check_output(out_dir / name, inputs=[checkpoint, split_path], force=force)
    state = load_checkpoint(checkpoint)
    model = state.build_model(device)
    _, train_refs, _, test_refs = _split_refs(data_dir, split_path)
    try:
        alpha = tof_alpha(train_refs, alpha_concentration_pct)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--alpha-concentration-pct") from None
    result = evaluate_blocks(model, test_refs, alpha=alpha, out_dir=out_dir / "figures", device=device)
    metrics = {"blocks": result.metrics,
               "run": {"checkpoint": str(checkpoint), "window_px": model.window_px,
                       "dataset_fingerprint": state.dataset_fingerprint, "test_sequences": len(test_refs)}}
    path = write_report(out_dir, metrics, result.figures)
    cnn, tof = result.metrics["cnn"], result.metrics["tof"]
    typer.echo(f"{path}: MAE CNN {cnn['mae_kpa']:.2f} +/- {cnn['mae_std_kpa']:.2f} kPa, "
               f"ToF {tof['mae_kpa']:.2f} +/- {tof['mae_std_kpa']:.2f} kPa")


@app.command()
def predict(
    session: Path = typer.Argument(..., help="session file"),
    checkpoint: Path = typer.Option(..., "--checkpoint"),
    out: Path = typer.Option(Path("map.png"), "--out", help="PNG; the map is also saved next to it as .npy"),
    key: str = typer.Option("", help="sequence key (default: the first complete sequence)"),
    device: Literal["cpu", "cuda"] = typer.Option("cpu"),
    tile_px: int = typer.Option(128, help="output tile side, bounds memory", min=1),
    force: bool = typer.Option(False, "--force", help="Replace OUT (and its .npy) if they exist."),
) -> None:
    """Dense full-field elasticity map of one sequence."""
    for path in (out, out.with_suffix(".npy")):
        check_output(path, inputs=[session, checkpoint], force=force)
    state = load_checkpoint(checkpoint)
    model = state.build_model(device)
    with SessionReader(session) as reader:
        refs = reader.sequences()
        grid = reader.grid
    chosen = [r for r in refs if r.has_displacement and (not key or r.key == key)]
    if not chosen:
        raise SessionFileError(session, "no complete sequence " + (f"{key!r} " if key else "") + "with displacement")
    ref = chosen[0]
    _, depth, lateral = ref.shape
    if min(depth, lateral) < model.window_px:
        raise CheckpointError(checkpoint, f"its model takes {model.window_px} px windows; {session} images {depth} x {lateral} px")
    e_map = predict_dense(model, read_displacement(ref), mean_um=ref.displacement_mean_um,
                          std_um=ref.displacement_std_um, tile_px=tile_px, device=device)
    with atomic_output(out.with_suffix(".npy")) as tmp:
        np.save(tmp, e_map)
    with atomic_output(out) as tmp:
        save_figure(inclusion_maps({f"{ref.key} ({model.window_px} px)": e_map}, grid), tmp)
    typer.echo(f"{out}: median {np.nanmedian(e_map):.1f} kPa over {np.isfinite(e_map).sum()} pixels")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
