"""Training sequences held in memory: each sequence's region of window centres plus half a window.

A training window reads all 35 frames of a ``w x w`` tile; from a session file that is 4 x 4 chunks and a
few hundred microseconds at 65 px (``benchmarks/bench_datasets.py``), and a GPU training step consumes
windows faster than that (SPEC §8). The store reads every sequence once, verifies it against its
checksum (so a damaged file fails at the start of a run, not in epoch 140), keeps only the pixels a
window can reach and cuts windows from memory, on the host or on the training device.

Paper sizes: a 121 x 181 px ROI with a 32 px margin is 185 x 245 px x 35 frames, 6.3 MB per sequence in
float32 (3.2 MB in float16): a paper CV fold's 1,800 training sequences take 11.4 GB (5.7 GB), which
fits an H200 beside the net. ``dtype=float16`` halves that; ``benchmarks/bench_data_path.py`` measures
what its rounding changes (the windows differ from the file's by a relative 2^-11, far below the
displacement's noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from shearlab.datasets.reader import SequenceRef, SessionReader


@dataclass(frozen=True)
class StoreRegion:
    """The pixels of one sequence that the store keeps: ``[depth0, depth1) x [lateral0, lateral1)``."""

    depth0: int
    depth1: int
    lateral0: int
    lateral1: int


class WindowStore:
    """Crops ``(sequences, frames, rows, cols)`` of displacement in um, and where each crop starts.

    Build with :meth:`read`; move to a device with :meth:`to`; cut windows with :meth:`cut`.
    Crops of different sizes are padded (with NaN, never read) to the largest.
    """

    def __init__(self, volumes: torch.Tensor, origins: np.ndarray) -> None:
        self.volumes = volumes
        self.origins = np.asarray(origins, dtype=np.int64)  # (sequences, 2): image pixel of crop [0, 0]

    @classmethod
    def read(cls, refs: Sequence[SequenceRef], regions: Sequence[StoreRegion], *, frames: int | None = None,
             dtype: torch.dtype = torch.float32, verify: bool = True) -> WindowStore:
        """Read each sequence's ``region`` from its session file, its checksum verified first.

        Raises ``CorruptSessionError`` naming the sequence whose data do not match its checksum.
        """
        if len(refs) != len(regions) or not refs:
            raise ValueError("one region per sequence, and at least one sequence")
        if dtype not in (torch.float32, torch.float16):
            raise ValueError(f"the store holds float32 or float16, not {dtype}")
        n_frames = min(r.shape[0] for r in refs) if frames is None else frames
        rows = max(g.depth1 - g.depth0 for g in regions)
        cols = max(g.lateral1 - g.lateral0 for g in regions)
        volumes = torch.full((len(refs), n_frames, rows, cols), float("nan"), dtype=dtype)
        by_path: dict[object, list[int]] = {}
        for i, ref in enumerate(refs):
            by_path.setdefault(ref.path, []).append(i)
        for path, indices in by_path.items():
            with SessionReader(path) as reader:  # type: ignore[arg-type]
                for i in indices:
                    g = regions[i]
                    volume = reader.read_displacement(refs[i].key, verify=verify)
                    crop = volume[:n_frames, g.depth0:g.depth1, g.lateral0:g.lateral1]
                    volumes[i, :, :crop.shape[1], :crop.shape[2]] = torch.from_numpy(np.ascontiguousarray(crop))
        return cls(volumes, np.array([(g.depth0, g.lateral0) for g in regions]))

    @property
    def nbytes(self) -> int:
        return self.volumes.numel() * self.volumes.element_size()

    def to(self, device: torch.device) -> WindowStore:
        """The same store on ``device`` (itself if it is there already)."""
        if self.volumes.device == device:
            return self
        return WindowStore(self.volumes.to(device), self.origins)

    def cut(self, sequences: Sequence[int], depth_px: Sequence[int], lateral_px: Sequence[int],
            window_px: int, *, flips: Sequence[tuple[bool, bool]] | None = None,
            out: torch.Tensor | None = None) -> torch.Tensor:
        """Windows ``(n, frames, w, w)`` float32 whose top-left pixels are ``(depth_px, lateral_px)`` on
        the image grid of sequences ``sequences``, on the store's device; written into ``out`` if given.

        ``flips``: per window, whether to mirror it along depth and along lateral (augmentation's flips).
        Mirrored while cut, tile by tile: flipping a whole 65 px batch afterwards (0.6 MB a window) cost
        more than the cut itself (``benchmarks/bench_data_path.py``).
        """
        seq = np.asarray(sequences, dtype=np.int64)
        rows = np.asarray(depth_px, dtype=np.int64) - self.origins[seq, 0]
        cols = np.asarray(lateral_px, dtype=np.int64) - self.origins[seq, 1]
        if (rows < 0).any() or (cols < 0).any() or (rows + window_px > self.volumes.shape[2]).any() \
                or (cols + window_px > self.volumes.shape[3]).any():
            raise ValueError("a window reaches outside the region the store holds")
        if out is None:
            out = torch.empty((len(seq), self.volumes.shape[1], window_px, window_px), device=self.volumes.device)
        mirrors = [(False, False)] * len(seq) if flips is None else flips
        # Tile by tile: on a CPU a copy of a 65 px tile costs a third of its share of one batched stack
        # (measured: 13 vs 47 us), a flipped one 30 us; float16 is widened on the way.
        for i, (s, r, c) in enumerate(zip(seq, rows, cols, strict=True)):
            tile = self.volumes[s, :, r:r + window_px, c:c + window_px]
            dims = [d for d, mirrored in zip((-2, -1), mirrors[i], strict=True) if mirrored]
            out[i].copy_(tile.flip(dims) if dims else tile)
        return out
