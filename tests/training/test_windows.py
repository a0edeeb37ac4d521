"""Training windows: shapes, ROI, normalisation, reproducible augmentation, DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from shearlab.datasets import Catalogue, SessionReader
from shearlab.training.normalisation import normalise_volume
from shearlab.training.windows import WindowDataset


@pytest.fixture
def refs(make_session, tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "w"
    folder.mkdir()
    make_session("w10", 10.0, positions=range(2), folder=folder, pushes=[2, 4, 6])
    make_session("w15", 15.0, positions=range(1), folder=folder, pushes=[3, 5], e_kpa=97.0)
    return Catalogue(folder).query(labelled=True)


def test_items_are_windows_inside_the_roi(refs) -> None:  # type: ignore[no-untyped-def]
    ds = WindowDataset(refs, 17, epoch_seed=1, return_info=True)
    with SessionReader(refs[0].path) as reader:
        rows, cols = reader.grid.roi_slices(reader.info.roi)
        volume = reader.read_displacement(refs[0].key)
    window, label, info = ds[0]
    assert window.shape == (1, 35, 17, 17) and window.dtype == torch.float32
    assert label.dtype == torch.float32 and float(label) == pytest.approx(54.0)
    assert rows.start <= info["centre_depth_px"] < rows.stop and cols.start <= info["centre_lateral_px"] < cols.stop
    # per-window z-score of exactly the pixels around the centre
    d, x = info["centre_depth_px"], info["centre_lateral_px"]
    raw = volume[:, d - 8:d + 9, x - 8:x + 9].astype(np.float64)
    np.testing.assert_allclose(window[0].numpy(), (raw - raw.mean()) / raw.std(), atol=1e-5)


def test_sequence_normalisation_matches_dense_inference(refs) -> None:  # type: ignore[no-untyped-def]
    ds = WindowDataset(refs, 9, normalisation="sequence", return_info=True)
    window, _, info = ds[2]
    ref = refs[2]
    with SessionReader(ref.path) as reader:
        dense = normalise_volume(reader.read_displacement(ref.key), mean=ref.displacement_mean_um,
                                 std=ref.displacement_std_um)
    d, x = info["centre_depth_px"], info["centre_lateral_px"]
    np.testing.assert_array_equal(window[0].numpy(), dense[:, d - 4:d + 5, x - 4:x + 5])


def test_same_seed_and_epoch_give_same_windows_with_any_workers(refs) -> None:  # type: ignore[no-untyped-def]
    def epoch(workers: int, seed: int, ep: int) -> torch.Tensor:
        ds = WindowDataset(refs, 9, epoch_seed=seed, epoch=ep, augment=True)
        loader = DataLoader(ds, batch_size=4, num_workers=workers, shuffle=False,
                            multiprocessing_context="fork" if workers else None)
        return torch.cat([x for x, _ in loader])

    serial = epoch(0, 5, 2)
    assert torch.equal(serial, epoch(2, 5, 2))
    assert not torch.equal(serial, epoch(0, 5, 3))
    assert not torch.equal(serial, epoch(0, 6, 2))


def test_windows_differ_between_epochs_and_cover_the_roi(refs) -> None:  # type: ignore[no-untyped-def]
    ds = WindowDataset(refs, 5)
    centres = set()
    for ep in range(30):
        ds.set_epoch(ep)
        p = ds.placement(0)
        centres.add((p.centre_depth_px, p.centre_lateral_px))
    assert len(centres) > 25


def test_unlabelled_or_bad_arguments_are_refused(refs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="odd"):
        WindowDataset(refs, 16)
    with pytest.raises(ValueError, match="does not fit"):
        WindowDataset(refs, 65)  # the 64-row test grid is too small for it
    unlabelled = [r.__class__(**{**r.__dict__, "label_e_kpa": None}) for r in refs[:1]]
    with pytest.raises(ValueError, match="no label"):
        WindowDataset(unlabelled, 9)
