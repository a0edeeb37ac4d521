"""The study's evaluation on synthetic sessions: every method on the same pixels, intervals, invariance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shearlab.datasets.catalogue import Catalogue
from shearlab.training.estimators import (
    CnnEstimator,
    ConstantEstimator,
    SequenceView,
    SpeedEstimator,
    fit_baselines,
    push_zone,
    ttp_speed,
)
from shearlab.training.evaluation import amplitude_invariance, evaluate_blocks
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.synthetic import small_grid, synthetic_session_info, write_synthetic_session

LABELS = {7.5: 37.5, 15.0: 97.2}


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> list:
    folder = tmp_path_factory.mktemp("sessions")
    for conc, e_kpa in LABELS.items():
        write_synthetic_session(folder / f"block-{conc:g}.h5", synthetic_session_info(f"block-{conc:g}", concentration_pct=conc),
                                positions=range(3), pushes=(1, 4, 7), e_kpa=e_kpa)
    return Catalogue(folder).query(kind="block", labelled=True)


@pytest.fixture(scope="module")
def cnn() -> CnnEstimator:
    torch.manual_seed(0)
    return CnnEstimator(DenseNet3d.from_config(model_config_for_window(5, init_channels=3, growth_rate=3)).eval(), label="CNN (5 px)")


def test_the_cnn_reads_a_scaled_sequence_as_the_same_gel(refs: list, cnn: CnnEstimator) -> None:
    view = SequenceView.read(refs[0])
    rows, cols = slice(20, 30), slice(30, 50)
    base = cnn.estimate(view, rows, cols)
    for gain in (0.5, 2.0):
        np.testing.assert_allclose(cnn.estimate(view.scaled(gain), rows, cols), base, rtol=1e-4)
    report = amplitude_invariance(cnn, [view])
    assert report["holds"] and report["median_relative_change"] < 1e-4


def test_push_zone_is_where_a_65_px_span_straddles_the_push() -> None:
    grid = small_grid(10, 200)
    zone = push_zone(grid, slice(0, 200), 0.0)
    half = 32 * abs(grid.dx_m)
    np.testing.assert_array_equal(zone, np.abs(grid.lateral_m) <= half)
    assert zone.sum() in (64, 65)


def test_every_method_is_scored_on_the_same_pixels_with_intervals(refs: list, cnn: CnnEstimator, tmp_path: Path) -> None:
    constant = ConstantEstimator(50.0)
    ttp = SpeedEstimator("ttp", "time to peak", ttp_speed, 1.0, "robust")
    result = evaluate_blocks([cnn, constant, ttp], refs, out_dir=tmp_path)
    methods = result.metrics["methods"]
    assert list(methods) == ["cnn", "training_mean", "ttp"]
    # A constant estimate's error is its distance to each label, the same at every pixel.
    expected = np.mean([abs(LABELS[r.concentration_pct] - 50.0) for r in refs])
    assert methods["training_mean"]["mae_kpa"][0] == pytest.approx(expected)
    for method in methods.values():
        value, low, high = method["mae_kpa"]
        assert low <= value <= high
    assert "cnn_margin_kpa" in methods["ttp"] and "cnn_margin_kpa" not in methods["cnn"]
    rows = result.metrics["by_concentration"]
    assert [row["concentration_pct"] for row in rows] == [7.5, 15.0]
    assert all(row["positions"] == 3 and row["sequences"] == 9 for row in rows)
    assert [row["push"] for row in result.metrics["by_push"]] == [1.0, 4.0, 7.0]
    assert result.metrics["push_independence"]["unseen_pushes"] == [1, 7]
    assert {p.name for p in result.figures} >= {"mae_vs_stiffness.png", "mae_vs_push.png", "maps_mean.png", "maps_spread.png"}


def test_baselines_are_fitted_on_training_data_only(refs: list) -> None:
    """The synthetic waves travel at the speed Eq. 1 gives their label with alpha = 1, so a fitted alpha
    near 1 shows the speed estimators read them right; the mean is the training labels'."""
    train = [r for r in refs if r.position_index < 2]
    baselines = {e.key: e for e in fit_baselines(train, alpha_concentration_pct=7.5)}
    assert set(baselines) == {"training_mean", "amplitude", "tof_paper", "tof_robust", "ttp"}
    assert baselines["training_mean"].value_kpa == pytest.approx(np.mean(list(LABELS.values())))
    assert baselines["ttp"].alpha == pytest.approx(1.0, rel=0.15)
    with pytest.raises(ValueError, match="12.5 %"):
        fit_baselines(train, alpha_concentration_pct=12.5)
