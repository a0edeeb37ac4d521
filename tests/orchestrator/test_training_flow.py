"""The training flow on small synthetic sessions: split, CNN, ToF, report, with the split saved."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from shearlab.datasets.catalogue import Catalogue
from shearlab.orchestrator.flows.training import training_flow
from shearlab.training.synthetic import small_sequence_spec, synthetic_session_info, write_synthetic_session
from shearlab.training.truth_windows import TruthMapWindowDataset

pytestmark = pytest.mark.slow


def test_training_flow_writes_report_split_and_checkpoint(tmp_path, prefect_harness):
    sessions = tmp_path / "sessions"
    # Wide enough that part of the ROI lies outside the push zone, where the robust alpha is fitted.
    spec = small_sequence_spec(n_lateral=192)
    for conc, e_kpa in ((7.5, 37.5), (15.0, 97.2)):
        write_synthetic_session(sessions / f"block-{conc:g}.h5",
                                synthetic_session_info(f"block-{conc:g}", concentration_pct=conc, spec=spec),
                                positions=range(8), pushes=(2, 4), e_kpa=e_kpa)
    plan = tmp_path / "training.toml"
    plan.write_text(f'sessions_dir = "{sessions}"\nout_dir = "{tmp_path / "out"}"\nwindow_px = 5\ninit_channels = 3\n'
                    'growth_rate = 3\nepochs = 2\nbatch_size = 16\nlr = 1e-3\nalpha_concentration_pct = 7.5\n'
                    'evaluate_inclusions = false\ndevice = "cpu"\nrepeats = 2\n')
    result = training_flow(plan_path=plan)
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "report.html").exists() and (out / "split_cv4-fold0-seed0.json").exists()
    methods = metrics["blocks"]["methods"]
    assert set(methods) == {"cnn", "training_mean", "amplitude", "tof_paper", "tof_robust", "ttp"}
    assert methods["tof_paper"]["alpha_rule"] == "mean" and methods["ttp"]["alpha_rule"] == "robust"
    assert result["metrics"]["provenance"]["dataset fingerprint"] == metrics["provenance"]["dataset fingerprint"]
    # Two seeds, two nets, the spread of their held-out error in the report.
    assert metrics["seeds"]["seeds"] == [0, 1] and len(metrics["seeds"]["cnn_mae_kpa"]) == 2
    # The model carries the split it was trained on and the fingerprint of its data.
    checkpoint = torch.load(out / "cnn_w5_cv4-fold0-seed0_seed0.pt", weights_only=True)
    assert "cv4-fold0-seed0" in str(checkpoint["split"])
    assert "batch-7.5" in metrics["provenance"]["batches without a calibration record"]


def test_truth_map_windows_take_the_label_at_their_centre(tmp_path):
    write_synthetic_session(tmp_path / "s.h5", synthetic_session_info("s", concentration_pct=7.5), positions=range(1),
                            pushes=(2,), e_kpa=37.5)
    (ref,) = Catalogue(tmp_path).query()
    depth, lateral = ref.shape[1:]
    truth = np.full((depth, lateral), np.nan)
    truth[20:30, 40:50] = 90.0
    truth[30:40, 40:50] = 30.0
    data = TruthMapWindowDataset([ref], [truth], 9, windows_per_sequence=50, epoch_seed=3)
    labels = sorted({float(data[i][1]) for i in range(len(data))})
    assert labels == [30.0, 90.0]
    window, _ = data[0]
    assert tuple(window.shape) == (1, ref.shape[0], 9, 9)
    # Reproducible per epoch, different across epochs.
    assert torch.equal(data[0][0], window)
    epoch0 = torch.stack([data[i][0] for i in range(len(data))])
    data.set_epoch(1)
    assert not torch.equal(torch.stack([data[i][0] for i in range(len(data))]), epoch0)
