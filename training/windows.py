"""Training windows for the spatio-temporal CNN as ``torch.utils.data.Dataset`` objects (SPEC §2).

``WindowDataset`` reads session files, or (``in_memory=True``) a ``WindowStore`` read from them once;
``VolumeWindowDataset`` cuts windows from volumes held in memory (synthetic shear waves in tests and
benchmarks). Each sequence gives ``windows_per_sequence`` items per epoch: a ``w x w`` pixel window with all
frames, centred at a random pixel of the region, normalised and optionally augmented. The window position
and every augmentation draw come from ``numpy.random.default_rng([epoch_seed, epoch, index])``, so the same
seed and epoch give the same windows whatever the number of ``DataLoader`` workers, the order they run in,
and whether the items are cut one at a time (``dataset[i]``) or a batch at once on the training device
(``dataset.batches``: what the trainer uses without loader workers).

Items may be indexed ``(epoch, index)`` as well as ``index``: loader workers that persist across epochs
(each holding its own copy of the dataset) then still cut the epoch the trainer asks for.

HDF5 files are opened lazily in whichever process reads (each worker opens its own handles), never
inherited across a fork.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from shearlab.datasets.layout import SEQUENCES
from shearlab.datasets.reader import SequenceRef, SessionReader, open_h5_readonly
from shearlab.training.augment import NO_AUGMENT, AugmentConfig, AugmentDraw, draw_augment, erase, turn_and_blur
from shearlab.training.normalisation import Normalisation, normalise_volume, normalise_windows
from shearlab.training.window_store import StoreRegion, WindowStore

# On a CPU, windows are finished a few at a time so that each stays in cache between the steps that
# touch it (cut, turn, blur, normalise, erase): one pass through memory instead of five.
_CPU_CHUNK_BYTES = 4 << 20

ItemIndex = int | tuple[int, int]


@dataclass(frozen=True)
class WindowPlacement:
    """Where item ``index`` of an epoch reads: the sequence and the window's centre pixel."""

    ref: SequenceRef
    centre_depth_px: int
    centre_lateral_px: int
    half_px: int

    @property
    def depth_slice(self) -> slice:
        return slice(self.centre_depth_px - self.half_px, self.centre_depth_px + self.half_px + 1)

    @property
    def lateral_slice(self) -> slice:
        return slice(self.centre_lateral_px - self.half_px, self.centre_lateral_px + self.half_px + 1)


def finish_windows(raw: torch.Tensor, draws: Sequence[AugmentDraw], *, mean: Sequence[float] | None,
                   std: Sequence[float] | None) -> torch.Tensor:
    """Raw windows ``(n, frames, w, w)`` um -> network input: turned, blurred, normalised, erased (in place).

    ``mean``/``std`` per window for sequence normalisation, None for the per-window z-score.
    """
    return erase(normalise_windows(turn_and_blur(raw, draws), mean, std), draws)


class WindowDataset(Dataset[tuple[Any, ...]]):
    """Random windows of each sequence, ``windows_per_sequence`` per epoch (paper: one, in the ROI).

    Parameters
    ----------
    sequences
        Labelled sequences with displacement (e.g. from ``Catalogue.query(labelled=True)``).
    window
        Window side in pixels, odd (the paper's 65, 33, 17, 9, 5).
    epoch_seed, epoch
        Seed of the run and current epoch (``set_epoch`` between epochs).
    normalisation
        ``"window"``: per-window z-score (paper); ``"sequence"``: the sequence's own mean/std, the
        same for every window of a sequence (needed for dense full-field inference).
    augment
        ``True`` for ``AugmentConfig()``, an ``AugmentConfig``, or ``False``.
    frames
        Use the first ``frames`` frames (default: all).
    return_info
        Items become ``(window, label, info)``, ``info`` a dict naming the sequence and position.
    windows_per_sequence
        Windows drawn from each sequence per epoch: a short run sees as many windows as a longer one.
    region
        ``"roi"``: centres inside the training ROI (paper); ``"image"``: anywhere a full window fits.
        A homogeneous block has one label everywhere, and windows far from the push teach the net
        the late, weak arrivals that pushes it never trained on bring into the ROI.
    in_memory
        Read every sequence's region (plus half a window) once into a ``WindowStore``, checksums
        verified, and cut windows from memory; the same windows, bit for bit, as from the files.
    store_dtype
        ``torch.float32`` or ``torch.float16`` for the store (half the memory; see ``window_store``).

    Items are ``(window, label)``: ``window`` float32 tensor ``(1, frames, window, window)``,
    ``label`` float32 scalar tensor, Young's modulus in kPa.
    """

    def __init__(self, sequences: Sequence[SequenceRef], window: int, *, epoch_seed: int = 0, epoch: int = 0,
                 normalisation: Normalisation = "window", augment: bool | AugmentConfig = False,
                 frames: int | None = None, return_info: bool = False, windows_per_sequence: int = 1,
                 region: Literal["roi", "image"] = "roi", in_memory: bool = False,
                 store_dtype: torch.dtype = torch.float32) -> None:
        if windows_per_sequence < 1:
            raise ValueError(f"windows_per_sequence must be >= 1, got {windows_per_sequence}")
        if region not in ("roi", "image"):
            raise ValueError(f"region must be 'roi' or 'image', got {region!r}")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number of pixels, got {window}")
        if normalisation not in ("window", "sequence"):
            raise ValueError(f"normalisation must be 'window' or 'sequence', got {normalisation!r}")
        refs = list(sequences)
        if not refs:
            raise ValueError("no sequences given")
        unusable = [r.id for r in refs if r.label_e_kpa is None or not r.has_displacement]
        if unusable:
            raise ValueError(f"{len(unusable)} sequences have no label or no displacement, e.g. {unusable[:3]}")
        self.refs = refs
        self.window = window
        self.half_px = window // 2
        self.epoch_seed = int(epoch_seed)
        self.epoch = int(epoch)
        self.normalisation = normalisation
        self.augment = AugmentConfig() if augment is True else (augment or None)
        self.frames = frames
        self.return_info = return_info
        self.windows_per_sequence = windows_per_sequence
        self.region = region
        self._centre_ranges = {path: self._centre_range(path) for path in {r.path for r in refs}}
        self._files: dict[Path, h5py.File] = {}
        self._pid = os.getpid()
        self.store: WindowStore | None = None
        if in_memory:
            h = self.half_px
            regions = [StoreRegion(d0 - h, d1 + h, l0 - h, l1 + h)
                       for d0, d1, l0, l1 in (self._centre_ranges[r.path] for r in refs)]
            self.store = WindowStore.read(refs, regions, frames=frames, dtype=store_dtype)
        self._device_stores: dict[torch.device, WindowStore] = {}
        self._buffers: list[torch.Tensor] = []

    def _centre_range(self, path: Path) -> tuple[int, int, int, int]:
        """Valid window centres ``[d0, d1) x [l0, l1)``: inside the region and the window inside the image."""
        with SessionReader(path) as reader:
            grid, roi = reader.grid, reader.info.roi
        _, depth, lateral = grid.shape
        rows, cols = grid.roi_slices(roi) if self.region == "roi" else (slice(0, depth), slice(0, lateral))
        h = self.half_px
        d0, d1 = max(rows.start, h), min(rows.stop, depth - h)
        l0, l1 = max(cols.start, h), min(cols.stop, lateral - h)
        if d0 >= d1 or l0 >= l1:
            raise ValueError(f"{path}: a {self.window} px window centred in the ROI does not fit the "
                             f"{depth} x {lateral} image")
        return d0, d1, l0, l1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.refs) * self.windows_per_sequence

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        state["_device_stores"] = {}
        state["_buffers"] = []
        return state

    def _rng(self, index: int, epoch: int | None = None) -> np.random.Generator:
        return np.random.default_rng([self.epoch_seed, self.epoch if epoch is None else epoch, index])

    def _place(self, index: int, rng: np.random.Generator) -> WindowPlacement:
        ref = self.refs[index // self.windows_per_sequence]
        d0, d1, l0, l1 = self._centre_ranges[ref.path]
        return WindowPlacement(ref, int(rng.integers(d0, d1)), int(rng.integers(l0, l1)), self.half_px)

    def _draw(self, index: int, epoch: int | None = None) -> tuple[WindowPlacement, AugmentDraw]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = self._rng(index, epoch)
        where = self._place(index, rng)  # the placement first, then the augmentation: one stream
        return where, NO_AUGMENT if self.augment is None else draw_augment(rng, self.augment, self.window)

    def placement(self, index: int) -> WindowPlacement:
        """The window item ``index`` reads in the current epoch (no I/O)."""
        return self._place(index, self._rng(index))

    def _file(self, path: Path) -> h5py.File:
        if os.getpid() != self._pid:
            self._files, self._pid = {}, os.getpid()
        fh = self._files.get(path)
        if fh is None:
            fh = self._files[path] = open_h5_readonly(path)
        return fh

    def read_window(self, placement: WindowPlacement) -> np.ndarray:
        """Raw window ``(frames, window, window)`` in micrometres, from the session file."""
        frames = slice(None) if self.frames is None else slice(0, self.frames)
        dset = self._file(placement.ref.path)[SEQUENCES]["displacement"]
        return dset[placement.ref.row, frames, placement.depth_slice, placement.lateral_slice]

    def _device_store(self, device: torch.device) -> WindowStore:
        assert self.store is not None
        if device not in self._device_stores:
            self._device_stores[device] = self.store.to(device)
        return self._device_stores[device]

    def _finished(self, indices: Sequence[int], epoch: int | None, device: torch.device,
                  out: torch.Tensor | None = None) -> torch.Tensor:
        """Items ``indices`` of ``epoch`` as network input ``(n, frames, w, w)`` on ``device`` (in ``out``)."""
        drawn = [self._draw(i, epoch) for i in indices]
        placements = [p for p, _ in drawn]
        draws = [d for _, d in drawn]
        if self.store is None:
            raw = torch.from_numpy(np.stack([self.read_window(p) for p in placements]).astype(np.float32, copy=False))
            raw = raw.to(device) if out is None else out.copy_(raw)
        else:
            h = self.half_px
            raw = self._device_store(device).cut([i // self.windows_per_sequence for i in indices],
                                                 [p.centre_depth_px - h for p in placements],
                                                 [p.centre_lateral_px - h for p in placements], self.window,
                                                 flips=[(d.flip_depth, d.flip_lateral) for d in draws], out=out)
            # The cut mirrored them; a quarter turn, if drawn, still follows the mirrors.
            draws = [replace(d, flip_depth=False, flip_lateral=False) for d in draws]
        stats = self.normalisation == "sequence"
        return finish_windows(raw, draws,
                              mean=[p.ref.displacement_mean_um for p in placements] if stats else None,
                              std=[p.ref.displacement_std_um for p in placements] if stats else None)

    def __getitem__(self, index: ItemIndex) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, dict[str, object]]:
        epoch, index = index if isinstance(index, tuple) else (None, index)
        window = self._finished([index], epoch, torch.device("cpu"))
        ref = self.refs[index // self.windows_per_sequence]
        label = torch.tensor(ref.label_e_kpa, dtype=torch.float32)
        if not self.return_info:
            return window, label
        where = self._place(index, self._rng(index, epoch))
        info = {"id": ref.id, "session_id": ref.session_id, "key": ref.key, "row": ref.row,
                "push_index": ref.push_index, "position_index": ref.position_index,
                "concentration_pct": float("nan") if ref.concentration_pct is None else ref.concentration_pct,
                "centre_depth_px": where.centre_depth_px, "centre_lateral_px": where.centre_lateral_px}
        return window, label, info

    def batches(self, order: Sequence[int], batch_size: int, device: torch.device | str, *,
                reuse: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Items ``order`` of the current epoch in batches ``(n, 1, frames, w, w)``, ``(n,)`` kPa, cut and
        augmented on ``device`` (from the store moved there once, when ``in_memory``): the same windows
        as ``dataset[i]`` stacked, bit for bit on a CPU, within float rounding of the blur on a GPU.

        ``reuse``: write the batches into two buffers the dataset keeps, in turn, so a batch stays valid
        only until the next-but-one is drawn, in this epoch or the next (the trainer's use). A fresh
        150 MB batch of 65 px windows costs more in page faults on a CPU than cutting and augmenting it.
        """
        device = torch.device(device)
        frames = self.refs[0].shape[0] if self.frames is None else self.frames
        shape = (frames, self.window, self.window)
        # Chunks small enough to stay in a CPU's cache from the cut to the erasing; a GPU takes the batch.
        chunk = batch_size if device.type != "cpu" else max(1, _CPU_CHUNK_BYTES // (4 * int(np.prod(shape))))
        labels = torch.tensor([r.label_e_kpa for r in self.refs], dtype=torch.float32, device=device)
        for start in range(0, len(order), batch_size):
            indices = list(order[start:start + batch_size])
            x = self._buffer((len(indices), 1, *shape), device) if reuse else \
                torch.empty((len(indices), 1, *shape), device=device)
            for a in range(0, len(indices), chunk):
                self._finished(indices[a:a + chunk], None, device, out=x[a:a + chunk, 0])
            seq = torch.as_tensor([i // self.windows_per_sequence for i in indices], device=device)
            yield x, labels[seq]

    def _buffer(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """The older of two kept output buffers (a new one while there are fewer), viewed as ``shape``."""
        kept = [b for b in self._buffers if b.device == device and b.shape[1:] == shape[1:] and b.shape[0] >= shape[0]]
        if len(kept) < 2:
            kept.append(torch.empty(shape, device=device))
        else:
            kept.append(kept.pop(0))
        self._buffers = kept
        return kept[-1][:shape[0]]

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files = {}


class VolumeWindowDataset(Dataset[tuple[torch.Tensor, float]]):
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
    augment
        ``True`` for ``AugmentConfig()``, an ``AugmentConfig``, or ``False``; drawn per item from
        ``(seed, epoch, index)``.
    """

    def __init__(self, volumes: list[np.ndarray], labels_kpa: list[float], window_px: int, *,
                 normalise_per_sequence: bool = True, seed: int = 0, augment: bool | AugmentConfig = False) -> None:
        if len(volumes) != len(labels_kpa):
            raise ValueError("one label per volume")
        self.volumes = [normalise_volume(v) if normalise_per_sequence else np.asarray(v, np.float32) for v in volumes]
        self.labels_kpa = [float(label) for label in labels_kpa]
        self.window_px = window_px
        self.seed = seed
        self.augment = AugmentConfig() if augment is True else (augment or None)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        self._corners = [(int(rng.integers(0, v.shape[1] - self.window_px + 1)),
                          int(rng.integers(0, v.shape[2] - self.window_px + 1))) for v in self.volumes]

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, float]:
        row, col = self._corners[index]
        w = self.window_px
        window = torch.from_numpy(self.volumes[index][:, row:row + w, col:col + w].copy())[None]  # augmented in place
        if self.augment is not None:
            draws = [draw_augment(np.random.default_rng([self.seed, self.epoch, index]), self.augment, w)]
            window = erase(turn_and_blur(window, draws), draws)
        return window, self.labels_kpa[index]
