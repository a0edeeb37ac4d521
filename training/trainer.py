"""The training loop: MSE on kPa labels (with a sigma head, also its likelihood: ``training.losses``), Adam,
step learning-rate schedule, checkpoint and resume.

Works with any ``torch.utils.data.Dataset`` yielding ``(window, label_kpa)``: window ``(1, frames, w, w)``
float32, label a float in kPa. Each epoch draws its order from a generator seeded by ``(seed, epoch)``
(augmentation is the dataset's, drawn from its own seeds); a dataset with a ``set_epoch(epoch)`` method
(e.g. one random window per sequence per epoch) is told the epoch first. A run resumed from a checkpoint
therefore continues exactly as the uninterrupted run would.

A ``BatchSource`` (``WindowDataset``) is read without loader workers through its ``batches``: windows cut
and augmented a batch at a time on the training device, from memory when the dataset holds its
sequences there; with ``num_workers`` > 0 it is read by workers that persist across epochs, each item
indexed ``(epoch, index)``. Other datasets get a fresh ``DataLoader`` per epoch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from shearlab.training.checkpoint import load_checkpoint, save_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.losses import regression_loss
from shearlab.training.model import DenseNet3d
from shearlab.training.normalisation import Normalisation, zscore_windows

# Mixes epoch into the seed so consecutive epochs draw unrelated streams.
_EPOCH_SEED_STRIDE = 1_000_003


@dataclass
class TrainResult:
    """The trained model (eval mode) and one history row per epoch run in this or earlier sessions."""

    model: DenseNet3d
    history: list[dict[str, float]]
    checkpoint_path: Path | None


@runtime_checkable
class BatchSource(Protocol):
    """A dataset that cuts whole batches itself and takes ``(epoch, index)`` items (``WindowDataset``)."""

    def batches(self, order: Sequence[int], batch_size: int, device: torch.device | str, *,
                reuse: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[Any, ...]: ...


@dataclass
class EpochSampler:
    """A sampler the trainer refills every epoch: ``(epoch, index)`` items for persistent workers."""

    items: list[tuple[int, int]] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _epoch_batches(data: Dataset, order: list[int], epoch: int, config: TrainConfig, device: torch.device,
                   generator: torch.Generator, persistent: tuple[DataLoader, EpochSampler] | None) -> Iterable[Any]:
    if persistent is not None:
        loader, sampler = persistent
        sampler.items = [(epoch, i) for i in order]
        return loader
    if isinstance(data, BatchSource):
        return data.batches(order, config.batch_size, device, reuse=True)
    return DataLoader(data, batch_size=config.batch_size, sampler=order, num_workers=config.num_workers,
                      generator=generator)


def resolve_device(name: str) -> torch.device:
    """``'auto'`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _prepare(windows: torch.Tensor, device: torch.device, normalisation: Normalisation,
             channels_last: bool) -> torch.Tensor:
    x = windows.to(device, dtype=torch.float32, non_blocking=True)
    if normalisation == "window":
        x = zscore_windows(x)
    if channels_last and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_dataset(model: DenseNet3d, data: Dataset, *, batch_size: int = 250,
                    normalisation: Normalisation = "sequence", device: str | torch.device = "cpu",
                    mixed_precision: bool = False, num_workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and labels of every item, in order, both ``(items,)`` float64 kPa."""
    device = torch.device(device)
    model.eval()
    preds, labels = [], []
    order = list(range(len(cast(Sized, data))))
    batches = (data.batches(order, batch_size, device, reuse=True) if isinstance(data, BatchSource) and num_workers == 0
               else DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers))
    for windows, label in batches:
        x = _prepare(windows, device, normalisation, channels_last=True)
        with _autocast(device, mixed_precision):
            preds.append(model(x).float().cpu().numpy())
        labels.append(torch.as_tensor(label).cpu().numpy().astype(np.float64))
    if not preds:
        return np.empty(0), np.empty(0)
    return np.concatenate(preds).astype(np.float64), np.concatenate(labels)


def train(model: DenseNet3d, train_data: Dataset, val_data: Dataset | None, config: TrainConfig, *,
          checkpoint_path: Path | None = None, split: Any = None, dataset_fingerprint: str = "",
          on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``model`` on ``train_data``; resume from ``checkpoint_path`` if it exists.

    Parameters
    ----------
    model
        Freshly built net (its weights are replaced by the checkpoint's when resuming).
    train_data, val_data
        Datasets of ``(window (1, frames, w, w), label_kpa)``; ``val_data`` may be None.
    config
        Settings; ``config.epochs`` is the total, so a resumed run stops at the same epoch.
    checkpoint_path
        Written every ``config.checkpoint_every_epochs`` epochs and at the end.
    split, dataset_fingerprint
        JSON-serialisable split description and a dataset hash, stored in the checkpoint.
    on_epoch
        Called with each epoch's history row (progress reporting).
    """
    device = resolve_device(config.device)
    model.to(device)
    if config.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # torch's stubs omit it
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path, map_location=device)
        model.load_state_dict(state.model_state)
        if state.optimizer_state is not None:
            optimizer.load_state_dict(state.optimizer_state)
        if state.rng_state is not None:
            torch.set_rng_state(state.rng_state.cpu())
        start_epoch, history = state.epochs_done, state.history

    def checkpoint(epochs_done: int) -> None:
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model=model, train_config=config, epochs_done=epochs_done,
                            optimizer=optimizer, split=split, dataset_fingerprint=dataset_fingerprint,
                            history=history)

    persistent = None
    if isinstance(train_data, BatchSource) and config.num_workers > 0:
        sampler = EpochSampler()
        persistent = (DataLoader(train_data, batch_size=config.batch_size, sampler=sampler,
                                 num_workers=config.num_workers, persistent_workers=True,
                                 pin_memory=device.type == "cuda"), sampler)
    for epoch in range(start_epoch, config.epochs):
        lr = config.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        generator = torch.Generator().manual_seed(config.seed * _EPOCH_SEED_STRIDE + epoch)
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)
        order = torch.randperm(len(cast(Sized, train_data)), generator=generator).tolist()
        loader = _epoch_batches(train_data, order, epoch, config, device, generator, persistent)
        model.train()
        t0 = time.perf_counter()
        loss_sum, count = 0.0, 0
        for windows, labels in loader:
            x = _prepare(windows, device, config.normalisation, config.channels_last)
            y = labels.to(device, dtype=torch.float32)
            with _autocast(device, config.mixed_precision):
                loss, mse = regression_loss(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += mse.item() * len(y)
            count += len(y)
        elapsed = time.perf_counter() - t0
        row = {"epoch": float(epoch + 1), "lr": lr, "train_mse_kpa2": loss_sum / max(count, 1),
               "windows_per_s": count / elapsed if elapsed > 0 else float("nan")}
        if val_data is not None and len(cast(Sized, val_data)) > 0:
            pred, label = predict_dataset(model, val_data, batch_size=config.batch_size,
                                          normalisation=config.normalisation, device=device,
                                          mixed_precision=config.mixed_precision)
            row["val_mse_kpa2"] = float(np.mean((pred - label) ** 2))
            row["val_mae_kpa"] = float(np.mean(np.abs(pred - label)))
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if (epoch + 1) % config.checkpoint_every_epochs == 0:
            checkpoint(epoch + 1)
    checkpoint(max(config.epochs, start_epoch))
    return TrainResult(model=model.eval(), history=history, checkpoint_path=checkpoint_path)
