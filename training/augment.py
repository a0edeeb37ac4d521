"""Training augmentation (paper): flips, rotations, Gaussian blur, random erasing.

For datasets that do not augment themselves (``datasets.WindowDataset(augment=...)`` does). Pixels are
anisotropic (0.08 mm deep x 0.055 mm wide): a 90 degree rotation changes a wave's apparent speed in pixels
per frame by 1.45 while the label stays, so 90 degree rotations are opt-in; flips and 180 degrees are exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Blur sigma range in pixels and the chance of each augmentation (ours; the paper gives none).
_BLUR_SIGMA_PX = (0.3, 1.0)
_P_BLUR = 0.3
_P_ERASE = 0.3
_ERASE_FRACTION = (0.05, 0.25)


def _blur(window: torch.Tensor, sigma_px: float) -> torch.Tensor:
    radius = 2
    taps = torch.arange(-radius, radius + 1, dtype=window.dtype, device=window.device)
    kernel = torch.exp(-0.5 * (taps / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    # Spatial blur only, replicate padding keeps the window size.
    x = window.reshape(-1, 1, *window.shape[-2:])
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(window.shape)


def augment_batch(windows: torch.Tensor, generator: torch.Generator, *, rotate90: bool = False) -> torch.Tensor:
    """Randomly flip, rotate (180 deg, or k x 90 deg with ``rotate90``), blur and erase each window.

    Parameters
    ----------
    windows
        ``(batch, 1, frames, w, w)`` on CPU or GPU; square in space so rotations keep the shape.
    generator
        CPU generator: the draws, and so a resumed run, are reproducible.
    """
    out = []
    for window in windows:
        draws = torch.rand(6, generator=generator).tolist()
        if draws[0] < 0.5:
            window = window.flip(-1)
        if draws[1] < 0.5:
            window = window.flip(-2)
        quarter_turns = int(draws[2] * 4) if rotate90 else 2 * int(draws[2] * 2)
        window = torch.rot90(window, quarter_turns, dims=(-2, -1))
        if draws[3] < _P_BLUR:
            window = _blur(window, _BLUR_SIGMA_PX[0] + draws[4] * (_BLUR_SIGMA_PX[1] - _BLUR_SIGMA_PX[0]))
        if draws[5] < _P_ERASE:
            w = window.shape[-1]
            fraction = torch.empty(1).uniform_(*_ERASE_FRACTION, generator=generator).item()
            side = max(1, int(round(w * fraction**0.5)))
            top, left = torch.randint(0, w - side + 1, (2,), generator=generator).tolist()
            window = window.clone()
            window[..., top:top + side, left:left + side] = 0.0
        out.append(window)
    return torch.stack(out)
