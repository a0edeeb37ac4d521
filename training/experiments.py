"""The paper's training protocols as functions of a train/validation dataset pair.

The datasets and splits come from ``shearlab.datasets`` (``cv_splits``, ``loco_splits``,
``WindowDataset``); these functions train, checkpoint (with the split and dataset fingerprint) and
report validation error. The lead wires them to datasets and flows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from shearlab.datasets.reader import SequenceRef
from shearlab.training.checkpoint import load_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.model import DenseNet3d, ModelConfig
from shearlab.training.trainer import TrainResult, predict_dataset, resolve_device, train
from shearlab.training.windows import WindowDataset

# Paper: inclusion maps come from the homogeneous-phantom net fine-tuned 10 more epochs on inclusion data.
FINE_TUNE_EPOCHS = 10


def fold_datasets(train_refs: Sequence[SequenceRef], val_refs: Sequence[SequenceRef], window_px: int, *, seed: int,
                  device: str = "auto", windows_per_sequence: int = 1,
                  region: Literal["roi", "image"] = "roi") -> tuple[WindowDataset, WindowDataset | None]:
    """One fold's training windows (augmented; ``windows_per_sequence`` from ``region`` of each, see
    ``WindowDataset``) and validation windows (one per sequence, in the ROI), per-sequence normalised,
    each sequence read once into memory and checked against its checksum.

    The store is float16 when training on a GPU (half the device memory; ``bench_data_path.py`` measured
    its rounding at 4e-3 of a normalised window, a hundredth of the displacement noise, and 1.5e-3 kPa on an
    estimate) and float32 on a CPU, where it gives the session files' windows bit for bit.
    """
    dtype = torch.float16 if resolve_device(device).type == "cuda" else torch.float32
    train = WindowDataset(train_refs, window_px, epoch_seed=seed, normalisation="sequence", augment=True,
                          windows_per_sequence=windows_per_sequence, region=region, in_memory=True, store_dtype=dtype)
    val = WindowDataset(val_refs, window_px, epoch_seed=seed + 1, normalisation="sequence", in_memory=True,
                        store_dtype=dtype) if val_refs else None
    return train, val


@dataclass
class FoldResult:
    """One trained fold: where its checkpoint is and how it did on validation data."""

    protocol: str
    fold: str
    checkpoint_path: Path
    train: TrainResult
    val_mae_kpa: float
    val_mae_std_kpa: float


def _fold(protocol: str, fold: str, result: TrainResult, val_data: Dataset | None,
          config: TrainConfig) -> FoldResult:
    mae, std = float("nan"), float("nan")
    if val_data is not None and len(cast(Sized, val_data)) > 0:
        pred, label = predict_dataset(result.model, val_data, batch_size=config.batch_size,
                                      normalisation=config.normalisation,
                                      device=next(result.model.parameters()).device)
        error = np.abs(pred - label)
        mae, std = float(error.mean()), float(error.std())
    if result.checkpoint_path is None:
        raise ValueError(f"fold {fold} was trained without a checkpoint path")
    return FoldResult(protocol=protocol, fold=fold, checkpoint_path=Path(result.checkpoint_path),
                      train=result, val_mae_kpa=mae, val_mae_std_kpa=std)


def train_fold(train_data: Dataset, val_data: Dataset | None, *, model_config: ModelConfig,
               train_config: TrainConfig, checkpoint_path: Path, protocol: str, fold: str,
               split: Any = None, dataset_fingerprint: str = "",
               on_epoch: Callable[[dict[str, float]], None] | None = None) -> FoldResult:
    """Train a fresh net of ``model_config`` on one fold (resuming if ``checkpoint_path`` exists);
    ``on_epoch`` is called with each epoch's history row."""
    # The initial weights come from the training seed, not from whatever drew on torch's global generator
    # before: the same seed gives the same net whichever runs came first in the process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_config.seed)
        model = DenseNet3d.from_config(model_config)
    split_record = {"protocol": protocol, "fold": fold, "split": split}
    result = train(model, train_data, val_data, train_config, checkpoint_path=checkpoint_path,
                   split=split_record, dataset_fingerprint=dataset_fingerprint, on_epoch=on_epoch)
    return _fold(protocol, fold, result, val_data, train_config)


def cross_validation_fold(train_data: Dataset, val_data: Dataset | None, *, fold: int,
                          model_config: ModelConfig, train_config: TrainConfig, checkpoint_path: Path,
                          split: Any = None, dataset_fingerprint: str = "") -> FoldResult:
    """Protocol (a): one fold of 4-fold CV over positions (60 train / 10 val / 10 test per concentration)."""
    return train_fold(train_data, val_data, model_config=model_config, train_config=train_config,
                      checkpoint_path=checkpoint_path, protocol="cv", fold=str(fold), split=split,
                      dataset_fingerprint=dataset_fingerprint)


def leave_one_concentration_out_fold(train_data: Dataset, val_data: Dataset | None, *,
                                     held_out_concentration_pct: float, model_config: ModelConfig,
                                     train_config: TrainConfig, checkpoint_path: Path, split: Any = None,
                                     dataset_fingerprint: str = "") -> FoldResult:
    """Protocol (b): train without one concentration (7.5-15 %), validate on half of its data."""
    return train_fold(train_data, val_data, model_config=model_config, train_config=train_config,
                      checkpoint_path=checkpoint_path, protocol="loco",
                      fold=f"{held_out_concentration_pct:g}%", split=split,
                      dataset_fingerprint=dataset_fingerprint)


def fine_tune(base_checkpoint: Path, train_data: Dataset, val_data: Dataset | None, *, checkpoint_path: Path,
              train_config: TrainConfig | None = None, split: Any = None,
              dataset_fingerprint: str = "") -> FoldResult:
    """Fine-tune a trained net on inclusion data (paper: 10 epochs), writing a new checkpoint.

    ``train_config`` defaults to the base run's settings for 10 epochs from the base learning rate, on the
    paper's schedule scaled to them (``TrainConfig.lr_at``: a short run anneals too); the optimizer starts fresh.
    """
    if Path(checkpoint_path).resolve() == Path(base_checkpoint).resolve():
        raise ValueError("the fine-tuned checkpoint must not overwrite its base")
    base = load_checkpoint(base_checkpoint)
    config = train_config or base.train_config.model_copy(
        update={"epochs": FINE_TUNE_EPOCHS, "lr_decay_start_epoch": None, "lr_decay_every_epochs": None})
    model = base.build_model()
    split_record = {"protocol": "fine_tune", "base_checkpoint": str(base_checkpoint), "split": split}
    result = train(model, train_data, val_data, config, checkpoint_path=checkpoint_path, split=split_record,
                   dataset_fingerprint=dataset_fingerprint)
    return _fold("fine_tune", Path(base_checkpoint).stem, result, val_data, config)
