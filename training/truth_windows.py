"""Training windows labelled pixelwise from a known modulus map: fine-tuning on inclusion phantoms.

Block sessions carry one modulus per sequence (``training.windows.WindowDataset``); an inclusion phantom has
two gels, so each window takes the label of the truth map at its centre (the phantom's geometry and
each gel's calibrated modulus). The few sequences involved are held in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from shearlab.datasets.reader import SequenceRef, read_displacement
from shearlab.training.normalisation import normalise_volume


class TruthMapWindowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``windows_per_sequence`` random windows per sequence per epoch, labelled by ``truth_kpa``.

    Parameters
    ----------
    refs
        Sequences, each with its truth map ``(depth, lateral)`` kPa in ``truth_kpa`` (NaN: no label,
        never a window centre).
    window
        Window side, px.
    epoch_seed
        Windows are drawn from ``default_rng([epoch_seed, epoch, index])``: reproducible, and the same
        for any number of loader workers.
    minority_share
        Fraction of windows centred where the truth map holds its rarer value (the inclusion): an
        inclusion is 10-20 % of a phantom's image, and uniform draws would teach the net mostly
        background. ``None`` draws centres uniformly.

    Items are ``(float32 tensor (1, frames, window, window), float32 label kPa)``, the window normalised
    by its sequence's mean and standard deviation, as dense inference does.
    """

    def __init__(self, refs: Sequence[SequenceRef], truth_kpa: Sequence[np.ndarray], window: int, *,
                 windows_per_sequence: int = 64, epoch_seed: int = 0, minority_share: float | None = None) -> None:
        if minority_share is not None and not 0.0 <= minority_share <= 1.0:
            raise ValueError(f"minority_share must lie in [0, 1], got {minority_share}")
        if len(refs) != len(truth_kpa) or not refs:
            raise ValueError("one truth map per sequence, and at least one sequence")
        self.window, self.half = window, window // 2
        self.per_sequence = windows_per_sequence
        self.epoch_seed, self.epoch = epoch_seed, 0
        self.minority_share = minority_share
        self.volumes = [normalise_volume(read_displacement(r), mean=r.displacement_mean_um, std=r.displacement_std_um)
                        for r in refs]
        self.centres = []
        for volume, truth in zip(self.volumes, truth_kpa, strict=True):
            if truth.shape != volume.shape[1:]:
                raise ValueError(f"truth map {truth.shape} does not match the image {volume.shape[1:]}")
            usable = np.isfinite(truth)
            usable[:self.half], usable[-self.half:] = False, False
            usable[:, :self.half], usable[:, -self.half:] = False, False
            if not usable.any():
                raise ValueError("no pixel of the truth map can centre a window")
            values, counts = np.unique(truth[usable], return_counts=True)
            rare = usable & (truth == values[np.argmin(counts)]) if values.size > 1 else np.zeros_like(usable)
            self.centres.append((np.argwhere(usable & ~rare), np.argwhere(rare), truth))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.volumes) * self.per_sequence

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sequence = index // self.per_sequence
        common, rare, truth = self.centres[sequence]
        rng = np.random.default_rng([self.epoch_seed, self.epoch, index])
        if self.minority_share is None or len(rare) == 0 or len(common) == 0:
            centres = np.concatenate([common, rare])
        else:
            centres = rare if rng.random() < self.minority_share else common
        row, col = centres[rng.integers(len(centres))]
        h = self.half
        window = self.volumes[sequence][:, row - h:row + h + 1, col - h:col + h + 1]
        return torch.from_numpy(np.ascontiguousarray(window))[None], torch.tensor(truth[row, col], dtype=torch.float32)
