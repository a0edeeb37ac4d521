"""Training windows: shapes, ROI, normalisation, reproducible augmentation, DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from shearlab.datasets import Catalogue, SessionReader
from shearlab.datasets.errors import CorruptSessionError
from shearlab.datasets.layout import SEQUENCES
from shearlab.training.augment import AugmentConfig
from shearlab.training.config import TrainConfig
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.normalisation import normalise_volume
from shearlab.training.trainer import train
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


def _stack(ds: WindowDataset, epoch: int) -> torch.Tensor:
    ds.set_epoch(epoch)
    return torch.stack([ds[i][0] for i in range(len(ds))])


@pytest.mark.parametrize("normalisation", ["sequence", "window"])
def test_the_in_memory_store_gives_the_files_windows_bit_for_bit(refs, normalisation) -> None:  # type: ignore[no-untyped-def]
    kwargs = dict(epoch_seed=3, normalisation=normalisation, augment=AugmentConfig(blur_p=0.5), windows_per_sequence=3)
    files = WindowDataset(refs, 9, **kwargs)
    memory = WindowDataset(refs, 9, in_memory=True, **kwargs)
    for epoch in (0, 4):
        from_files = _stack(files, epoch)
        assert torch.equal(from_files, _stack(memory, epoch))
        # a batch cut at once on the device (here the CPU) is the same windows again, in the asked order
        order = list(range(len(memory)))[::-1]
        batched = torch.cat([x for x, _ in memory.batches(order, 4, "cpu")])
        assert torch.equal(batched, from_files[order])
        labels = torch.cat([y for _, y in files.batches(order, 5, "cpu")])
        assert torch.equal(labels, torch.stack([files[i][1] for i in order]))


def test_items_indexed_by_epoch_are_that_epochs_windows(refs) -> None:  # type: ignore[no-untyped-def]
    ds = WindowDataset(refs, 9, epoch_seed=2, augment=True, in_memory=True)
    later = ds[(7, 3)][0]
    ds.set_epoch(7)
    assert torch.equal(later, ds[3][0]) and ds.epoch == 7


def test_a_float16_store_rounds_within_its_precision(refs) -> None:  # type: ignore[no-untyped-def]
    exact = _stack(WindowDataset(refs, 9, normalisation="sequence", in_memory=True), 1)
    half = _stack(WindowDataset(refs, 9, normalisation="sequence", in_memory=True, store_dtype=torch.float16), 1)
    # float16 keeps 11 significant bits: relative rounding 2^-11 of the displacement, normalised by its std
    scale = max(r.displacement_std_um for r in refs) / min(r.displacement_std_um for r in refs)
    assert 0 < float((half - exact).abs().max()) <= 2.0**-11 * float(exact.abs().max()) * scale + 1e-6


def test_the_store_checks_every_sequence_against_its_checksum(make_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "bad"
    folder.mkdir()
    path = make_session("bad", 10.0, positions=[0], pushes=[2, 4], folder=folder)
    with h5py.File(path, "r") as fh:
        offset = fh[SEQUENCES]["displacement"].id.get_chunk_info_by_coord((1, 0, 0, 0)).byte_offset
    with open(path, "r+b") as raw:
        raw.seek(offset + 100)
        byte = raw.read(1)
        raw.seek(offset + 100)
        raw.write(bytes([byte[0] ^ 0xFF]))
    refs = Catalogue(folder).query(labelled=True)
    WindowDataset(refs, 9)  # reading windows from the file does not check whole sequences
    with pytest.raises(CorruptSessionError, match="p000_push4: checksum mismatch"):
        WindowDataset(refs, 9, in_memory=True)


def test_persistent_workers_train_as_the_in_process_batches_do(refs) -> None:  # type: ignore[no-untyped-def]
    def history(workers: int) -> list[float]:
        torch.manual_seed(0)
        model = DenseNet3d.from_config(model_config_for_window(9, init_channels=4, growth_rate=4))
        data = WindowDataset(refs, 9, epoch_seed=1, normalisation="sequence", augment=True, in_memory=True)
        config = TrainConfig(epochs=3, batch_size=4, device="cpu", num_workers=workers, mixed_precision=False)
        return [row["train_mse_kpa2"] for row in train(model, data, None, config).history]

    assert history(0) == pytest.approx(history(2), rel=1e-5)
