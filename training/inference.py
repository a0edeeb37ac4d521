"""Full-field elasticity maps from one displacement volume: dense (every pixel) and sparse (every n-th).

Maps are ``(depth, lateral)`` float32 kPa on the image grid; an estimate sits at its window's centre pixel
and pixels closer than ``w // 2`` to the edge, where no full window fits, are NaN.

Dense maps are made where the net runs: the volume goes to the device once, is normalised there, cut
into tiles as large as the device's free memory allows (each tile re-reads a ``w - 1`` px margin, so
fewer, larger tiles waste less), and the map is assembled there; ``dense_map`` leaves it there,
``predict_dense`` brings it back as an array. Convolutions run channels-last, on a CPU too (oneDNN's
fast layout for 3D convolutions).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator

from shearlab.training.model import DenseNet3d
from shearlab.training.normalisation import Normalisation, normalise_volume, normalise_windows, zscore_windows

# Share of the free memory a dense map may take: the rest is the caller's and the allocator's slack.
_MEMORY_SHARE = 0.5
# Live activations per pixel and channel-frame during a dense layer (its input, the batch-norm/ReLU
# output, the new features and the concatenation they join): measured peak over activation size.
_LIVE_COPIES = 4
# Where free memory cannot be read, assume this much.
_FALLBACK_FREE_BYTES = 2 << 30

TileSize = int | None | Literal["auto"]


def _check_volume(volume_um: np.ndarray, window_px: int) -> np.ndarray:
    volume = np.asarray(volume_um, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"volume must be (frames, depth, lateral), got shape {volume.shape}")
    if volume.shape[1] < window_px or volume.shape[2] < window_px:
        raise ValueError(f"volume {volume.shape[1:]} is smaller than the {window_px} x {window_px} window")
    return volume


def _to_device(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32).to(device)
    if device.type == "cuda":
        t = t.contiguous(memory_format=torch.channels_last_3d)
    return t


def free_memory_bytes(device: torch.device) -> int:
    """Bytes free on ``device``: the GPU's free memory, or the host's free physical memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return _FALLBACK_FREE_BYTES


def activation_bytes_per_pixel(model: DenseNet3d, frames: int, *, element_bytes: int = 4) -> int:
    """Peak bytes of live activations per input pixel of a dense pass: the widest dense block's
    concatenated features at its number of frames (or the stem's, if wider), ``_LIVE_COPIES`` times."""
    config = model.config
    widest = frames * config.init_channels
    t = frames // config.stem_time_pool
    channels = config.init_channels
    for i, size in enumerate(config.block_sizes):
        channels += size * config.growth_rate
        widest = max(widest, t * channels)
        if i < len(config.pool_px):
            channels, t = max(1, int(channels * config.compression)), t // 2
    return _LIVE_COPIES * element_bytes * widest


def auto_tile_px(model: DenseNet3d, shape: tuple[int, int, int], device: torch.device, *,
                 element_bytes: int = 4) -> int | None:
    """Side of square output tiles that fit ``_MEMORY_SHARE`` of the free memory; None if the field fits."""
    frames, depth, lateral = shape
    budget = _MEMORY_SHARE * free_memory_bytes(device)
    per_pixel = activation_bytes_per_pixel(model, frames, element_bytes=element_bytes)
    if depth * lateral * per_pixel <= budget:
        return None
    margin = model.window_px - 1
    return max(1, int((budget / per_pixel) ** 0.5) - margin)


@torch.no_grad()
def dense_map(model: DenseNet3d, volume_um: np.ndarray | torch.Tensor, *, mean_um: float | None = None,
              std_um: float | None = None, tile_px: TileSize = "auto", device: str | torch.device = "cpu",
              mixed_precision: bool = False, on_tile: Callable[[int, int], None] | None = None,
              distribution: bool = False) -> torch.Tensor:
    """The net's Young's modulus at every pixel where a full window fits, as a tensor on ``device``.

    Parameters
    ----------
    model
        Net in eval mode (batch norm as a fixed affine map); moved to ``device`` and to channels-last.
    volume_um
        Displacement ``(frames, depth, lateral)``, um: an array, or a tensor (already on ``device``: no copy).
    mean_um, std_um
        Sequence statistics used in training, both or neither (default: the volume's own, computed on
        the device).
    tile_px
        Side of the output tiles evaluated in one pass; ``"auto"``: the whole field if it fits half the
        device's free memory, else the largest square tiles that do; None: the whole field. Tiles
        overlap by ``w - 1`` input pixels, so the result does not depend on the tiling.
    device, mixed_precision
        Where to run; bfloat16 autocast if ``mixed_precision`` (CUDA; a CPU with AVX-512 BF16 gains
        ~1.3x, ``benchmarks/bench_training.py``, at a few tenths of a kPa).
    on_tile
        Called with ``(tiles done, tiles in all)`` after each tile (progress reporting).
    distribution
        For a net with a sigma head: also its raw relative sigma (``DenseNet3d.distribution``) from the same pass.

    Returns
    -------
    torch.Tensor
        ``(depth, lateral)`` float32 kPa on ``device`` (with ``distribution``, ``(2, depth, lateral)``: the
        estimate, the median of the predicted log-normal, and its raw relative sigma, the log-space standard
        deviation before the checkpoint's calibration, ``training.uncertainty``);
        ``(depth - w + 1) x (lateral - w + 1)`` estimates at window centres, NaN elsewhere.
    """
    w = model.window_px
    device = torch.device(device)
    if isinstance(volume_um, torch.Tensor):
        if volume_um.ndim != 3 or min(volume_um.shape[1:]) < w:
            raise ValueError(f"volume must be (frames, depth, lateral) of at least {w} x {w} px, got {tuple(volume_um.shape)}")
        volume = volume_um.to(device=device, dtype=torch.float32, copy=True)
    else:
        volume = torch.from_numpy(_check_volume(volume_um, w)).to(device, copy=True)
    if (mean_um is None) != (std_um is None):
        raise ValueError("pass both mean_um and std_um (a sequence's stored statistics), or neither")
    # Without statistics the whole volume is normalised as one window by its own: the same z-score.
    stats = (None, None) if mean_um is None else ([mean_um], [std_um])
    volume = normalise_windows(volume[None], *stats)[0]
    model.eval().to(device).to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    _, depth, lateral = volume.shape
    out_h, out_w = depth - w + 1, lateral - w + 1
    side = auto_tile_px(model, (int(volume.shape[0]), depth, lateral), device, element_bytes=2 if mixed_precision else 4) \
        if tile_px == "auto" else tile_px
    tile_h, tile_w = (out_h, out_w) if side is None else (min(side, out_h), min(side, out_w))
    result = torch.full((2 if distribution else 1, depth, lateral), float("nan"), device=device)
    estimates = result[:, w // 2:w // 2 + out_h, w // 2:w // 2 + out_w]
    corners = [(row, col) for row in range(0, out_h, tile_h) for col in range(0, out_w, tile_w)]
    for done, (row, col) in enumerate(corners, start=1):
        rows, cols = min(tile_h, out_h - row), min(tile_w, out_w - col)
        tile = volume[None, None, :, row:row + rows + w - 1, col:col + cols + w - 1]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=mixed_precision):
            x = tile.contiguous(memory_format=torch.channels_last_3d)
            if distribution:
                median, log_sigma = model.distribution(x, dense=True)
                tile_maps = torch.stack([median[0].float(), log_sigma[0].float().exp()])
            else:
                tile_maps = model(x, dense=True)[0][None]
        estimates[:, row:row + rows, col:col + cols] = tile_maps.float()
        if on_tile is not None:
            on_tile(done, len(corners))
    return result if distribution else result[0]


def predict_dense(model: DenseNet3d, volume_um: np.ndarray, *, normalisation: Normalisation = "sequence",
                  mean_um: float | None = None, std_um: float | None = None, tile_px: TileSize = "auto",
                  device: str | torch.device = "cpu", mixed_precision: bool = False,
                  on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``dense_map`` brought back to the host: ``(depth, lateral)`` float32 kPa, NaN where no window fits.

    ``normalisation`` must be ``'sequence'``: a per-window z-score differs per window and cannot be
    evaluated densely (use :func:`predict_sparse` with ``step_px=1`` for that).
    """
    if normalisation != "sequence":
        raise ValueError("dense evaluation needs one normalisation for the whole volume: use "
                         "normalisation='sequence', or predict_sparse(step_px=1) for per-window z-score")
    return dense_map(model, volume_um, mean_um=mean_um, std_um=std_um, tile_px=tile_px, device=device,
                     mixed_precision=mixed_precision, on_tile=on_tile).cpu().numpy()


def predict_dense_distribution(model: DenseNet3d, volume_um: np.ndarray, *, mean_um: float | None = None,
                               std_um: float | None = None, tile_px: TileSize = "auto", device: str | torch.device = "cpu",
                               mixed_precision: bool = False,
                               on_tile: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_dense` for a net with a sigma head: the estimate (kPa) and its raw relative sigma, from one
    pass, as ``(depth, lateral)`` float32 arrays (``dense_map`` with ``distribution``)."""
    maps = dense_map(model, volume_um, mean_um=mean_um, std_um=std_um, tile_px=tile_px, device=device,
                     mixed_precision=mixed_precision, on_tile=on_tile, distribution=True).cpu().numpy()
    return maps[0], maps[1]


@torch.no_grad()
def predict_windows(model: DenseNet3d, windows: np.ndarray | torch.Tensor, *, batch_size: int = 250,
                    normalisation: Normalisation = "sequence", device: str | torch.device = "cpu",
                    mixed_precision: bool = False) -> np.ndarray:
    """Window-by-window evaluation of ``(n, 1, frames, w, w)`` windows, batched; returns ``(n,)`` kPa.

    With ``'sequence'`` the windows must already be normalised with their volume's statistics.
    """
    device = torch.device(device)
    model.eval().to(device)
    windows = torch.as_tensor(windows, dtype=torch.float32)
    out = np.empty(len(windows), dtype=np.float32)
    autocast = mixed_precision and device.type == "cuda"
    for start in range(0, len(windows), batch_size):
        x = _to_device(windows[start:start + batch_size], device)
        if normalisation == "window":
            x = zscore_windows(x)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
            out[start:start + len(x)] = model(x).float().cpu().numpy()
    return out


def _centres(n: int, w: int, step_px: int) -> np.ndarray:
    first, last = w // 2, n - w + w // 2
    centres = np.arange(first, last + 1, step_px)
    return centres if centres[-1] == last else np.append(centres, last)


def predict_sparse(model: DenseNet3d, volume_um: np.ndarray, *, step_px: int,
                   normalisation: Normalisation = "sequence", mean_um: float | None = None,
                   std_um: float | None = None, batch_size: int = 250,
                   device: str | torch.device = "cpu", mixed_precision: bool = False) -> np.ndarray:
    """The net at every ``step_px``-th pixel (window by window, batched), linearly interpolated between.

    The last row and column of window centres are always evaluated, so the map covers the same pixels
    as :func:`predict_dense`. ``normalisation='window'`` gives the paper's per-window z-score;
    ``'sequence'`` uses ``mean_um``/``std_um`` (default: the volume's own).

    Returns
    -------
    np.ndarray
        ``(depth, lateral)`` float32 kPa, NaN where no full window fits.
    """
    if step_px < 1:
        raise ValueError(f"step_px must be >= 1, got {step_px}")
    w = model.window_px
    volume = _check_volume(volume_um, w)
    if normalisation == "sequence":
        volume = normalise_volume(volume, mean=mean_um, std=std_um)
    _, depth, lateral = volume.shape
    rows, cols = _centres(depth, w, step_px), _centres(lateral, w, step_px)
    views = np.lib.stride_tricks.sliding_window_view(volume, (w, w), axis=(1, 2))
    r_idx, c_idx = np.meshgrid(rows - w // 2, cols - w // 2, indexing="ij")
    windows = np.moveaxis(views[:, r_idx.ravel(), c_idx.ravel()], 0, 1)[:, None]
    values = predict_windows(model, windows, batch_size=batch_size, normalisation=normalisation,
                             device=device, mixed_precision=mixed_precision).reshape(len(rows), len(cols))
    result = np.full((depth, lateral), np.nan, dtype=np.float32)
    r_all = np.arange(rows[0], rows[-1] + 1)
    c_all = np.arange(cols[0], cols[-1] + 1)
    if len(rows) == 1 or len(cols) == 1:
        result[np.ix_(rows, cols)] = values
        return result
    interpolate = RegularGridInterpolator((rows, cols), values, method="linear")
    grid_r, grid_c = np.meshgrid(r_all, c_all, indexing="ij")
    result[np.ix_(r_all, c_all)] = interpolate(np.stack([grid_r, grid_c], axis=-1))
    return result
