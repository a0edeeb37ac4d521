"""Window augmentation (SPEC §2): flips, rotations, Gaussian blur, random erasing; all seeded.

The window datasets (``WindowDataset``, ``VolumeWindowDataset``) apply these to each item, drawing from
the item's own generator, so an epoch's augmentation is the same for any number of loader workers.
Windows are ``(frames, depth, lateral)`` float32. Pixels are anisotropic (0.08 mm deep x 0.055 mm
wide), which decides what a rotation means:

- flips and the 180-degree rotation map the grid onto itself: a wave keeps its speed in pixels per
  frame and the label stays true;
- a 90-degree rotation swaps depth and lateral *pixels*: a wave travelling laterally now crosses
  depth pixels that are 0.08 / 0.055 = 1.45 times wider, so its apparent speed in pixels per frame
  changes while the label does not. The paper rotates pixel windows anyway (as an invariance
  prior); here it is opt-in (``rotate90``) and off by default, because it teaches the network a
  speed-to-modulus relation that is off by that factor for a quarter of the windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation; ``AugmentConfig.none()`` disables all."""

    flip_depth_p: float = 0.5
    flip_lateral_p: float = 0.5
    rotate180_p: float = 0.5
    rotate90: bool = False
    blur_p: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.3, 1.0)
    erase_p: float = 0.3
    erase_area: tuple[float, float] = (0.02, 0.15)

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(flip_depth_p=0.0, flip_lateral_p=0.0, rotate180_p=0.0, blur_p=0.0, erase_p=0.0)


def augment_geometry(window: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Flips and rotations of the spatial axes of ``window`` ``(frames, w, w)``."""
    out = window
    if rng.random() < cfg.flip_depth_p:
        out = out[:, ::-1, :]
    if rng.random() < cfg.flip_lateral_p:
        out = out[:, :, ::-1]
    if rng.random() < cfg.rotate180_p:
        out = np.rot90(out, 2, axes=(1, 2))
    if cfg.rotate90 and rng.random() < 0.5:
        out = np.rot90(out, 1, axes=(1, 2))
    return np.ascontiguousarray(out)


def augment_blur(window: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Spatial Gaussian blur (not along time) with a random sigma in pixels."""
    if rng.random() >= cfg.blur_p:
        return window
    sigma = float(rng.uniform(*cfg.blur_sigma_px))
    return gaussian_filter(window, sigma=(0.0, sigma, sigma), mode="reflect").astype(np.float32)


def augment_erase(window: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig, *,
                  value: float = 0.0) -> np.ndarray:
    """Random erasing: a spatial rectangle, all frames, set to ``value`` (the normalised mean)."""
    if rng.random() >= cfg.erase_p:
        return window
    _, h, w = window.shape
    area = rng.uniform(*cfg.erase_area) * h * w
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    eh = int(np.clip(round(np.sqrt(area * aspect)), 1, h))
    ew = int(np.clip(round(np.sqrt(area / aspect)), 1, w))
    top = int(rng.integers(0, h - eh + 1))
    left = int(rng.integers(0, w - ew + 1))
    out = window.copy()
    out[:, top:top + eh, left:left + ew] = value
    return out
