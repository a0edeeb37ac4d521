import json

import numpy as np

from shearlab.training.figures import plot_dice_curves, plot_inclusion_maps, plot_mae_vs, plot_mean_std_maps
from shearlab.training.report import write_report
from shearlab.training.synthetic import small_grid


def test_figures_and_report(tmp_path):
    grid = small_grid(40, 60)
    rng = np.random.default_rng(0)
    mean = rng.uniform(20, 80, (40, 60))
    mask = np.zeros((40, 60), bool)
    mask[15:25, 25:35] = True
    figures = [
        plot_mean_std_maps(mean, mean * 0.1, grid, tmp_path / "fig6.png", roi=(slice(5, 35), slice(10, 50)),
                           push_lateral_mm=-1.0, title="push 4"),
        plot_mae_vs([17.42, 37.55], {"CNN": [(5.0, 1.0), (6.0, 2.0)], "ToF": [(9.0, 3.0), (12.0, 4.0)]},
                    tmp_path / "fig7.png", xlabel="E (kPa)"),
        plot_inclusion_maps({"65": mean, "ToF": mean}, grid, tmp_path / "fig9.png", inclusion_mask=mask),
        plot_dice_curves([10, 50, 90], {"65": [0.2, 0.9, 0.1]}, tmp_path / "fig10.png", marked_threshold_kpa=67.38),
    ]
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "report"
    html_path = write_report(out, {"homogeneous": {"cnn": {"mae_kpa": 5.01, "pearson": float("nan")}},
                                   "alpha": 0.75}, figures)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["homogeneous"]["cnn"] == {"mae_kpa": 5.01, "pearson": None}
    text = html_path.read_text()
    assert "fig9.png" in text and (out / "fig9.png").exists()
    assert "missing" in text and "5.01" in text
