"""The training package on ``shearlab.datasets`` session files: window dataset, splits, CLI."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.reader import read_displacement
from shearlab.datasets.splits import cv_splits
from shearlab.orchestrator.cli import app
from shearlab.training.inference import predict_dense
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.synthetic import small_sequence_spec, synthetic_session_info, write_synthetic_session
from shearlab.training.windows import WindowDataset


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions")
    # Wide enough that part of the ROI lies outside the push zone, where the robust alpha is fitted.
    spec = small_sequence_spec(n_lateral=192)
    for conc, e_kpa in ((7.5, 37.55), (15.0, 97.21)):
        info = synthetic_session_info(f"block-{conc:g}", concentration_pct=conc, spec=spec)
        write_synthetic_session(folder / f"block-{conc:g}.h5", info, positions=range(8), pushes=(2, 4), e_kpa=e_kpa)
    return folder


def test_dense_map_reproduces_the_window_dataset_windows(data_dir):
    refs = Catalogue(data_dir).query(labelled=True)
    data = WindowDataset(refs, 9, normalisation="sequence")
    torch.manual_seed(0)
    model = DenseNet3d.from_config(model_config_for_window(9, init_channels=3, growth_rate=3)).eval()
    for index in (0, 5):
        window, _ = data[index]
        where = data.placement(index)
        with torch.no_grad():
            expected = model(window[None]).item()
        ref = where.ref
        dense = predict_dense(model, read_displacement(ref), mean_um=ref.displacement_mean_um,
                              std_um=ref.displacement_std_um)
        assert dense[where.centre_depth_px, where.centre_lateral_px] == pytest.approx(expected, abs=1e-3)


def test_cli_train_evaluate_predict(data_dir, tmp_path):
    split = cv_splits(Catalogue(data_dir).query(labelled=True), n_folds=4)[0]
    split_path = tmp_path / "split.json"
    split.save(split_path)
    runner = CliRunner()
    checkpoint = tmp_path / "fold0.pt"
    result = runner.invoke(app, ["train", str(data_dir), "--split", str(split_path), "--out", str(checkpoint),
                                 "--window", "9", "--epochs", "2", "--batch-size", "8", "--lr", "1e-3",
                                 "--init-channels", "3", "--growth-rate", "3", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert checkpoint.exists()
    result = runner.invoke(app, ["evaluate", str(checkpoint), str(data_dir), "--split", str(split_path),
                                 "--out", str(tmp_path / "report"), "--alpha-concentration-pct", "7.5"])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "report" / "metrics.json").read_text())
    # The net predicts its uncertainty, calibrated on the split's validation positions when it was trained.
    assert written["uncertainty"]["calibrated_on"].startswith("validation:")
    assert [row["level"] for row in written["uncertainty"]["levels"]] == pytest.approx([0.5, 0.6827, 0.95], abs=1e-4)
    assert (tmp_path / "report" / "reliability.png").exists() and (tmp_path / "report" / "maps_sigma.png").exists()
    metrics = written["blocks"]
    assert [row["concentration_pct"] for row in metrics["by_concentration"]] == [7.5, 15.0]
    assert "alpha" in metrics["methods"]["tof_paper"] and 0 <= metrics["methods"]["tof_paper"]["failed_fraction"] <= 1
    result = runner.invoke(app, ["predict", str(data_dir / "block-15.h5"), "--checkpoint", str(checkpoint),
                                 "--out", str(tmp_path / "map.png")])
    assert result.exit_code == 0, result.output
    e_map = np.load(tmp_path / "map.npy")
    assert e_map.shape == (64, 192) and np.isfinite(e_map).sum() == (64 - 8) * (192 - 8)
    sigma_kpa = np.load(tmp_path / "map_sigma.npy")
    positive = np.isfinite(e_map) & (e_map > 0)
    assert positive.any() and np.isfinite(sigma_kpa[positive]).all() and (sigma_kpa[positive] > 0).all()
