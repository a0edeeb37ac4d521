"""Training settings (paper values by default, SPEC §2); every one can be overridden for small runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shearlab.protocols.strict_model import StrictModel
from shearlab.training.normalisation import Normalisation


class TrainConfig(StrictModel):
    """How to train: MSE, Adam 1e-4, batch 250, 250 epochs, lr halved every 50 epochs after epoch 150.

    ``normalisation='window'`` z-scores each window in the loop (paper); ``'sequence'`` expects
    the dataset to yield windows already normalised by their sequence's mean and std (dense-compatible).
    Augmentation is the dataset's job (``WindowDataset(augment=...)``, ``VolumeWindowDataset(augment=...)``).
    """

    epochs: int = Field(default=250, ge=1)
    batch_size: int = Field(default=250, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    lr_decay_start_epoch: int = Field(default=150, ge=0)
    lr_decay_every_epochs: int = Field(default=50, ge=1)
    lr_decay_factor: float = Field(default=0.5, gt=0, le=1)
    seed: int = 0
    normalisation: Normalisation = "sequence"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: bool = True
    channels_last: bool = True
    num_workers: int = Field(default=0, ge=0)
    checkpoint_every_epochs: int = Field(default=10, ge=1)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: paper epochs 151-200 at lr/2, 201-250 at lr/4."""
        if epoch < self.lr_decay_start_epoch:
            return self.lr
        steps = (epoch - self.lr_decay_start_epoch) // self.lr_decay_every_epochs + 1
        return self.lr * self.lr_decay_factor**steps
