"""Window augmentation (SPEC §2): flips, rotations, Gaussian blur, random erasing; all seeded.

Two halves, so that one augmentation runs the same wherever the windows live:

- ``draw_augment`` draws what happens to one window from that window's own generator, on the host
  (the window datasets seed it with ``(seed, epoch, index)``, so an epoch's augmentation is the same for
  any number of loader workers and whether windows are cut one at a time or a batch at once);
- ``orient``, ``blur`` (together ``turn_and_blur``, before normalisation) and ``erase`` (after it)
  apply the draws to a batch of windows ``(batch, frames, w, w)`` on whatever device the batch is on;
  the blur and the erasing work window by window, so a window comes out with the same bits whether it
  is augmented alone or in a batch of 250 (on one device).

Pixels are anisotropic (0.08 mm deep x 0.055 mm wide), which decides what a rotation means:

- flips and the 180-degree rotation map the grid onto itself: a wave keeps its speed in pixels per
  frame and the label stays true;
- a 90-degree rotation swaps depth and lateral *pixels*: a wave travelling laterally now crosses
  depth pixels that are 0.08 / 0.055 = 1.45 times wider, so its apparent speed in pixels per frame
  changes while the label does not. The paper rotates pixel windows anyway (as an invariance
  prior); here it is opt-in (``rotate90``) and off by default, because it teaches the network a
  speed-to-modulus relation that is off by that factor for a quarter of the windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Gaussian kernels reach 4 sigma, as scipy.ndimage.gaussian_filter's default truncation.
_BLUR_TRUNCATE = 4.0


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


@dataclass(frozen=True)
class AugmentDraw:
    """What happens to one window: flips (a half turn is both), a quarter turn, blur, an erased box.

    ``blur_sigma_px`` 0 means no blur; ``erase`` is ``(top, left, height, width)`` in window pixels.
    """

    flip_depth: bool = False
    flip_lateral: bool = False
    rotate90: bool = False
    blur_sigma_px: float = 0.0
    erase: tuple[int, int, int, int] | None = None


NO_AUGMENT = AugmentDraw()


def draw_augment(rng: np.random.Generator, cfg: AugmentConfig, window_px: int) -> AugmentDraw:
    """Draw one window's augmentation; the draws come in a fixed order from ``rng``."""
    flip_depth = bool(rng.random() < cfg.flip_depth_p)
    flip_lateral = bool(rng.random() < cfg.flip_lateral_p)
    if rng.random() < cfg.rotate180_p:  # a half turn is a flip of both axes
        flip_depth, flip_lateral = not flip_depth, not flip_lateral
    rotate90 = bool(cfg.rotate90 and rng.random() < 0.5)
    sigma = float(rng.uniform(*cfg.blur_sigma_px)) if rng.random() < cfg.blur_p else 0.0
    erase = None
    if rng.random() < cfg.erase_p:
        area = rng.uniform(*cfg.erase_area) * window_px * window_px
        aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
        eh = int(np.clip(round(np.sqrt(area * aspect)), 1, window_px))
        ew = int(np.clip(round(np.sqrt(area / aspect)), 1, window_px))
        erase = (int(rng.integers(0, window_px - eh + 1)), int(rng.integers(0, window_px - ew + 1)), eh, ew)
    return AugmentDraw(flip_depth, flip_lateral, rotate90, sigma, erase)


def orient(windows: torch.Tensor, draws: Sequence[AugmentDraw]) -> torch.Tensor:
    """Flip and turn each of ``windows`` ``(n, frames, w, w)`` as drawn, in place (a batched copy per
    kind of turn: at most eight)."""
    groups: dict[tuple[bool, bool, bool], list[int]] = {}
    for i, draw in enumerate(draws):
        groups.setdefault((draw.flip_depth, draw.flip_lateral, draw.rotate90), []).append(i)
    for (flip_depth, flip_lateral, rotate90), members in groups.items():
        dims = [d for d, flip in ((-2, flip_depth), (-1, flip_lateral)) if flip]
        if not dims and not rotate90:
            continue
        index = torch.as_tensor(members, device=windows.device)
        turned = torch.flip(windows[index], dims) if dims else windows[index]
        windows[index] = torch.rot90(turned, 1, (-2, -1)) if rotate90 else turned
    return windows


def _gaussian_taps(sigma_px: float) -> np.ndarray:
    """The normalised 1-D Gaussian kernel of ``sigma_px``, reaching ``_BLUR_TRUNCATE`` sigma (float64)."""
    radius = int(_BLUR_TRUNCATE * sigma_px + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    return taps / taps.sum()


def blur(window: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Spatial Gaussian blur (not along time) of one ``(frames, h, w)`` window (``sigma_px`` > 0), in place.

    Mirrored edges without repeating the edge pixel (``c b | a b c d | c b``, scipy's ``mirror``): one
    padding of both axes serves both passes, since padding laterally commutes with blurring in depth.
    Each tap is one pass over the window, with the window's own kernel width (3 to 9 taps).
    """
    taps = [float(t) for t in _gaussian_taps(sigma_px)]
    radius = (len(taps) - 1) // 2
    depth, lateral = window.shape[-2:]
    if radius >= min(depth, lateral):
        raise ValueError(f"a {len(taps)}-tap blur does not fit a {depth} x {lateral} px window")
    padded = F.pad(window[None], (radius, radius, radius, radius), mode="reflect")[0]
    along_depth = padded.narrow(-2, 0, depth) * taps[0]
    for k in range(1, len(taps)):
        along_depth.add_(padded.narrow(-2, k, depth), alpha=taps[k])
    torch.mul(along_depth.narrow(-1, 0, lateral), taps[0], out=window)
    for k in range(1, len(taps)):
        window.add_(along_depth.narrow(-1, k, lateral), alpha=taps[k])
    return window


def turn_and_blur(windows: torch.Tensor, draws: Sequence[AugmentDraw]) -> torch.Tensor:
    """The augmentation steps before normalisation, in place: ``orient``, then ``blur`` where drawn.

    Blurred window by window: each window's arithmetic is then its own, the same bits alone or in a batch.
    """
    orient(windows, draws)
    for window, draw in zip(windows, draws, strict=True):
        if draw.blur_sigma_px > 0:
            blur(window, draw.blur_sigma_px)
    return windows


def erase(windows: torch.Tensor, draws: Sequence[AugmentDraw], *, value: float = 0.0) -> torch.Tensor:
    """Random erasing, in place: each drawn box, all frames, set to ``value`` (the normalised mean)."""
    for window, draw in zip(windows, draws, strict=True):
        if draw.erase is not None:
            top, left, h, w = draw.erase
            window[:, top:top + h, left:left + w] = value
    return windows
