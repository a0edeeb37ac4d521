"""Analytic shear-wave displacement volumes and a window dataset over them, for tests and benchmarks.

A line source at lateral position ``x0`` (spanning depth around ``z0``) launches a Gaussian-in-time pulse
travelling at speed ``c`` in both lateral directions, with cylindrical spreading ``1 / sqrt(r)``:

    u(t, z, x) = A exp(-(z - z0)^2 / (2 s_z^2)) exp(-(t - t0 - |x - x0| / c)^2 / (2 s_t^2)) / sqrt(max(|x - x0|, r0) / r0)

This is not the twin's physics (no viscosity, no near field); it is a signal whose speed is known exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from shearlab.protocols.sequences import ImageGrid, ImagingSpec
from shearlab.training.normalisation import normalise_volume

# Density of gelatin (SPEC §2), kg/m^3, and the incompressible E = 3 rho c^2.
RHO_KG_M3 = 1000.0


def speed_to_modulus_kpa(speed_m_s: np.ndarray | float) -> np.ndarray | float:
    """Young's modulus of an incompressible solid with shear speed ``speed_m_s``: 3 rho c^2, in kPa."""
    return 3.0 * RHO_KG_M3 * np.square(speed_m_s) / 1e3


def small_grid(n_depth: int, n_lateral: int, n_frames: int = 35) -> ImageGrid:
    """The paper's pixel pitch (0.08 mm x 0.055 mm) and frame rate on a smaller field."""
    spec = ImagingSpec()
    return ImageGrid.from_spec(ImagingSpec(
        n_depth=n_depth, n_lateral=n_lateral, n_frames=n_frames,
        depth_mm=spec.depth_mm / spec.n_depth * n_depth, width_mm=spec.width_mm / spec.n_lateral * n_lateral))


def shear_wave_volume(grid: ImageGrid, *, speed_m_s: float, push_lateral_m: float, rng: np.random.Generator,
                      noise_um: float = 0.2, amplitude_um: float = 10.0, pulse_s: float = 0.25e-3,
                      onset_s: float = 0.0, depth_centre_m: float | None = None,
                      depth_sigma_m: float = 4e-3) -> np.ndarray:
    """Displacement ``(frames, depth, lateral)`` in um of a pulse leaving a line source at ``speed_m_s``."""
    t = grid.frame_times_s[:, None, None]
    z = grid.depth_m[None, :, None]
    x = grid.lateral_m[None, None, :]
    z0 = float(grid.depth_m.mean()) if depth_centre_m is None else depth_centre_m
    r = np.abs(x - push_lateral_m)
    r0 = 1e-3
    u = (amplitude_um * np.exp(-0.5 * ((z - z0) / depth_sigma_m) ** 2)
         * np.exp(-0.5 * ((t - onset_s - r / speed_m_s) / pulse_s) ** 2) / np.sqrt(np.maximum(r, r0) / r0))
    return (u + noise_um * rng.standard_normal(u.shape)).astype(np.float32)


class VolumeWindowDataset(Dataset):
    """One random ``w x w`` window per volume per epoch, labelled with the volume's modulus.

    Parameters
    ----------
    volumes
        ``(frames, depth, lateral)`` arrays in um.
    labels_kpa
        One label per volume.
    window_px
        Window side.
    normalise_per_sequence
        If True, each volume is z-scored as a whole first (the dense-compatible normalisation).
    seed
        Window positions come from ``(seed, epoch)``: see ``set_epoch``.
    """

    def __init__(self, volumes: list[np.ndarray], labels_kpa: list[float], window_px: int, *,
                 normalise_per_sequence: bool = True, seed: int = 0) -> None:
        if len(volumes) != len(labels_kpa):
            raise ValueError("one label per volume")
        self.volumes = [normalise_volume(v) if normalise_per_sequence else np.asarray(v, np.float32) for v in volumes]
        self.labels_kpa = [float(label) for label in labels_kpa]
        self.window_px = window_px
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self._corners = [(int(rng.integers(0, v.shape[1] - self.window_px + 1)),
                          int(rng.integers(0, v.shape[2] - self.window_px + 1))) for v in self.volumes]

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, float]:
        row, col = self._corners[index]
        w = self.window_px
        window = self.volumes[index][:, row:row + w, col:col + w]
        return torch.from_numpy(np.ascontiguousarray(window))[None], self.labels_kpa[index]
