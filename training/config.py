"""Training settings (paper values by default, SPEC §2); every one can be overridden for small runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shearlab.protocols.strict_model import StrictModel
from shearlab.training.normalisation import Normalisation

# The paper's schedule as fractions of its 250 epochs: constant for 150, then halved every 50.
_DECAY_START_FRACTION = 150 / 250
_DECAY_EVERY_FRACTION = 50 / 250


class TrainConfig(StrictModel):
    """How to train: MSE, Adam 1e-4, batch 250, 250 epochs, lr halved every 50 epochs after epoch 150
    (for another number of epochs, the same fractions of it).

    ``normalisation='window'`` z-scores each window in the loop (paper); ``'sequence'`` expects
    the dataset to yield windows already normalised by their sequence's mean and std (dense-compatible).
    Augmentation is the dataset's job (``WindowDataset(augment=...)``, ``VolumeWindowDataset(augment=...)``).
    """

    epochs: int = Field(default=250, ge=1)
    batch_size: int = Field(default=250, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    # None: the paper's schedule scaled to ``epochs`` (it halves after 150 of 250 epochs, then every 50):
    # a shorter run that kept the paper's epoch numbers would never anneal, and its last weights would
    # be wherever the constant rate left them (the quick demo's validation MAE moved +/-10 % from one epoch
    # to the next at its end, and two runs whose labels differed by 0.04 % ended 10 % apart). A run resumed
    # with more epochs than it was started with follows the longer run's schedule from where it stopped.
    lr_decay_start_epoch: int | None = Field(default=None, ge=0)
    lr_decay_every_epochs: int | None = Field(default=None, ge=1)
    lr_decay_factor: float = Field(default=0.5, gt=0, le=1)
    seed: int = 0
    normalisation: Normalisation = "sequence"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: bool = True
    channels_last: bool = True
    num_workers: int = Field(default=0, ge=0)
    checkpoint_every_epochs: int = Field(default=10, ge=1)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch``: paper epochs 151-200 at lr/2, 201-250 at lr/4; by default
        the same fractions of any other number of epochs (60 epochs: 37-48 at lr/2, 49-60 at lr/4)."""
        start = round(_DECAY_START_FRACTION * self.epochs) if self.lr_decay_start_epoch is None else self.lr_decay_start_epoch
        every = max(1, round(_DECAY_EVERY_FRACTION * self.epochs)) if self.lr_decay_every_epochs is None \
            else self.lr_decay_every_epochs
        if epoch < start:
            return self.lr
        return self.lr * self.lr_decay_factor ** ((epoch - start) // every + 1)
