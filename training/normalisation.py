"""Input normalisation of displacement windows and volumes: the one place the network's input scale is set.

The paper z-scores every window. That is a different affine map for every window, so a net evaluated
densely over a field cannot reproduce it: dense maps use one mean and standard deviation for the whole
displacement volume ("per sequence"), which is the same affine map for every window. Training windows
(``WindowDataset``, ``TruthMapWindowDataset``) and dense inference both go through ``normalise`` with a
sequence's stored mean and std, so dense inference stays exact. The cost of that choice in accuracy is
measured by ``benchmarks/bench_training.py`` (section "normalisation").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from shearlab.protocols.signal.amplitude import displacement_mean_std_um

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
    if mean is None or std is None:
        own_mean, own_std = displacement_mean_std_um(volume)
        mean = own_mean if mean is None else mean
        std = own_std if std is None else std
    return normalise(volume, float(mean), float(std))


def normalise_windows(windows: torch.Tensor, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None) -> torch.Tensor:
    """``normalise`` of each of ``windows`` ``(n, ...)`` float32, in place, on the windows' device.

    ``mean``/``std``: one per window (a sequence's stored statistics); None: each window's own (paper's
    per-window z-score), accumulated in float64. Elementwise the same float32 arithmetic as ``normalise``,
    so a window cut from a volume equals that crop of ``normalise_volume`` bit for bit.
    """
    if mean is None or std is None:
        flat = windows.reshape(len(windows), -1).double()
        mean_t, std_t = flat.mean(dim=1), flat.std(dim=1, correction=0)
    else:
        mean_t = torch.as_tensor(mean, dtype=torch.float64, device=windows.device)
        std_t = torch.as_tensor(std, dtype=torch.float64, device=windows.device)
    shape = (-1,) + (1,) * (windows.ndim - 1)
    return windows.sub_(mean_t.float().view(shape)).div_(std_t.clamp_min(_STD_FLOOR).float().view(shape))


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
