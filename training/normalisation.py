"""Input normalisation of displacement windows and volumes: the one place the network's input scale is set.

The paper z-scores every window. That is a different affine map for every window, so a net evaluated
densely over a field cannot reproduce it: dense maps use one mean and standard deviation for the whole
displacement volume ("per sequence"), which is the same affine map for every window. Training windows
(``WindowDataset``, ``TruthMapWindowDataset``) and dense inference both go through ``normalise`` with a
sequence's stored mean and std, so dense inference stays exact. The cost of that choice in accuracy is
measured by ``benchmarks/bench_training.py`` (section "normalisation").
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Normalisation = Literal["window", "sequence"]
# Guards the division for a flat (all-zero, erased or saturated) window or volume, in the data's own units.
_STD_FLOOR = 1e-6


def normalise(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``(values - mean) / std`` in float32, with ``std`` floored so a flat input stays finite."""
    return ((np.asarray(values, dtype=np.float32) - np.float32(mean)) / np.float32(max(std, _STD_FLOOR))).astype(np.float32)


def normalise_volume(volume: np.ndarray, *, mean: float | None = None, std: float | None = None) -> np.ndarray:
    """Per-sequence z-score: one mean and std for the whole ``(frames, depth, lateral)`` volume; float32.

    ``mean`` and ``std`` default to the volume's own; pass the stored ones (``SequenceRef.displacement_mean_um``,
    ``displacement_std_um``) to reproduce exactly what ``WindowDataset(normalisation="sequence")`` fed the net.
    """
    volume = np.asarray(volume, dtype=np.float32)
    mean = float(volume.mean(dtype=np.float64)) if mean is None else float(mean)
    std = float(volume.std(dtype=np.float64)) if std is None else float(std)
    return normalise(volume, mean, std)


def zscore_windows(windows: torch.Tensor) -> torch.Tensor:
    """Per-window z-score (paper) of a batch inside the training or inference loop.

    Parameters
    ----------
    windows
        ``(batch, 1, frames, h, w)``, any unit; zero mean, unit std over ``(frames, h, w)`` of each window.
    """
    mean = windows.mean(dim=(1, 2, 3, 4), keepdim=True)
    std = windows.std(dim=(1, 2, 3, 4), keepdim=True)
    return (windows - mean) / (std + _STD_FLOOR)
