"""Full-field elasticity maps from one displacement volume: dense (every pixel) and sparse (every n-th).

Maps are ``(depth, lateral)`` float32 kPa on the image grid; an estimate sits at its window's centre pixel
and pixels closer than ``w // 2`` to the edge, where no full window fits, are NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator

from shearlab.training.model import DenseNet3d
from shearlab.training.normalisation import Normalisation, normalise_volume, zscore_windows


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


def predict_dense(model: DenseNet3d, volume_um: np.ndarray, *, normalisation: Normalisation = "sequence",
                  mean_um: float | None = None, std_um: float | None = None, tile_px: int | None = 128,
                  device: str | torch.device = "cpu", mixed_precision: bool = False,
                  on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Young's modulus at every pixel where a full window fits, by dense evaluation of the net.

    Parameters
    ----------
    model
        Net in eval mode (batch norm as a fixed affine map).
    volume_um
        Displacement ``(frames, depth, lateral)``, um.
    normalisation
        Must be ``'sequence'``: a per-window z-score differs per window and cannot be evaluated
        densely (use :func:`predict_sparse` with ``step_px=1`` for that).
    mean_um, std_um
        Sequence statistics used in training (default: the volume's own).
    tile_px
        Side of the output tiles evaluated in one pass (bounds memory: ~1 GB at 128 px with the paper
        width on CPU); None: the whole field at once. Tiles overlap by ``w - 1`` input pixels, so the result
        does not depend on the tiling.
    device, mixed_precision
        Where to run; bfloat16 autocast on CUDA if ``mixed_precision``.
    on_tile
        Called with ``(tiles done, tiles in all)`` after each tile (progress reporting).

    Returns
    -------
    np.ndarray
        ``(depth, lateral)`` float32 kPa; ``(depth - w + 1) x (lateral - w + 1)`` estimates at window
        centres, NaN elsewhere.
    """
    if normalisation != "sequence":
        raise ValueError("dense evaluation needs one normalisation for the whole volume: use "
                         "normalisation='sequence', or predict_sparse(step_px=1) for per-window z-score")
    return _dense_maps(model, volume_um, distribution=False, mean_um=mean_um, std_um=std_um, tile_px=tile_px,
                       device=device, mixed_precision=mixed_precision, on_tile=on_tile)[0]


def predict_dense_distribution(model: DenseNet3d, volume_um: np.ndarray, *, mean_um: float | None = None,
                               std_um: float | None = None, tile_px: int | None = 128, device: str | torch.device = "cpu",
                               mixed_precision: bool = False,
                               on_tile: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_dense` for a net with a sigma head: the estimate and its relative sigma, from one pass.

    Returns
    -------
    tuple of np.ndarray
        ``(depth, lateral)`` float32 maps: the estimate (kPa, the median of the predicted log-normal) and
        its raw relative sigma (the log-space standard deviation, dimensionless, before the checkpoint's
        calibration: ``training.uncertainty``); NaN where no full window fits.
    """
    median, sigma = _dense_maps(model, volume_um, distribution=True, mean_um=mean_um, std_um=std_um, tile_px=tile_px,
                                device=device, mixed_precision=mixed_precision, on_tile=on_tile)
    return median, sigma


@torch.no_grad()
def _dense_maps(model: DenseNet3d, volume_um: np.ndarray, *, distribution: bool, mean_um: float | None,
                std_um: float | None, tile_px: int | None, device: str | torch.device, mixed_precision: bool,
                on_tile: Callable[[int, int], None] | None) -> np.ndarray:
    """``(outputs, depth, lateral)``: the estimate, and with ``distribution`` its relative sigma."""
    w = model.window_px
    volume = normalise_volume(_check_volume(volume_um, w), mean=mean_um, std=std_um)
    device = torch.device(device)
    model.eval().to(device)
    _, depth, lateral = volume.shape
    out_h, out_w = depth - w + 1, lateral - w + 1
    tile_h = out_h if tile_px is None else min(tile_px, out_h)
    tile_w = out_w if tile_px is None else min(tile_px, out_w)
    estimates = np.empty((2 if distribution else 1, out_h, out_w), dtype=np.float32)
    autocast = mixed_precision and device.type == "cuda"
    corners = [(row, col) for row in range(0, out_h, tile_h) for col in range(0, out_w, tile_w)]
    for done, (row, col) in enumerate(corners, start=1):
        rows, cols = min(tile_h, out_h - row), min(tile_w, out_w - col)
        tile = volume[:, row:row + rows + w - 1, col:col + cols + w - 1]
        x = _to_device(tile[None, None], device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
            if distribution:
                median, log_sigma = model.distribution(x, dense=True)
                outputs = torch.stack([median[0].float(), log_sigma[0].float().exp()])
            else:
                outputs = model(x, dense=True)[0][None]
        estimates[:, row:row + rows, col:col + cols] = outputs.float().cpu().numpy()
        if on_tile is not None:
            on_tile(done, len(corners))
    result = np.full((len(estimates), depth, lateral), np.nan, dtype=np.float32)
    result[:, w // 2:w // 2 + out_h, w // 2:w // 2 + out_w] = estimates
    return result


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
