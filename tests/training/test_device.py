"""The data path and dense maps on the training device: the same numbers wherever they are made.

On a CPU-only machine the device is the CPU and the CUDA comparisons are skipped; on a machine with a GPU
(``benchmarks/gpu_checks.sh``) they compare the GPU's windows and maps with the CPU's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shearlab.datasets import Catalogue
from shearlab.training.augment import AugmentConfig
from shearlab.training.inference import dense_map, predict_dense, predict_windows
from shearlab.training.normalisation import normalise_volume
from shearlab.training.windows import WindowDataset

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_a_dense_map_stays_on_its_device_until_asked_for(model, volume) -> None:  # type: ignore[no-untyped-def]
    on_device = dense_map(model, torch.from_numpy(volume), tile_px=None)
    assert isinstance(on_device, torch.Tensor) and on_device.device.type == "cpu" and on_device.shape == (30, 40)
    np.testing.assert_array_equal(on_device.numpy(), predict_dense(model, volume, tile_px=None))
    # every estimate is its window's, evaluated alone (the same normalisation, float32 rounding apart)
    normalised = normalise_volume(volume)
    rows, cols = np.nonzero(np.isfinite(on_device.numpy()))
    pick = np.random.default_rng(1).choice(len(rows), 20, replace=False)
    windows = np.stack([normalised[:, r - 8:r + 9, c - 8:c + 9] for r, c in zip(rows[pick], cols[pick], strict=True)])
    np.testing.assert_allclose(predict_windows(model, windows[:, None]), on_device.numpy()[rows[pick], cols[pick]], atol=1e-3)


@cuda
def test_dense_maps_on_the_gpu_equal_the_cpus(model, volume) -> None:  # type: ignore[no-untyped-def]
    cpu = predict_dense(model, volume)
    # fp32 with TF32 convolutions on the GPU: SPEC §8 measured 2-4e-2 kPa between CUDA and CPU
    np.testing.assert_allclose(predict_dense(model, volume, device="cuda"), cpu, atol=5e-2, equal_nan=True)
    np.testing.assert_allclose(predict_dense(model, volume, device="cuda", mixed_precision=True), cpu, atol=0.5,
                               equal_nan=True)


@cuda
def test_windows_cut_on_the_gpu_equal_the_cpus(make_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "s"
    folder.mkdir()
    make_session("g10", 10.0, positions=range(2), folder=folder, pushes=[2, 4, 6])
    refs = Catalogue(folder).query(labelled=True)
    data = WindowDataset(refs, 9, epoch_seed=3, normalisation="sequence", augment=AugmentConfig(blur_p=0.5),
                         windows_per_sequence=4, in_memory=True)
    order = list(range(len(data)))
    cpu = torch.cat([x for x, _ in data.batches(order, 8, "cpu")])
    gpu = torch.cat([x.cpu() for x, _ in data.batches(order, 8, "cuda")])
    # geometry and normalisation are exact; the blur's sums may round differently on the GPU
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=1e-5)
