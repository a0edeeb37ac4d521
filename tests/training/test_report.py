"""Figures hold the data they were given; the report opens with the answer its numbers support."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from shearlab.training.figures import dice_curves, mae_vs, map_panels, save_figure
from shearlab.training.report import findings, kpa, write_report
from shearlab.training.synthetic import small_grid


def _maps() -> tuple[np.ndarray, np.ndarray]:
    mean = np.random.default_rng(0).uniform(20, 80, (40, 60))
    mask = np.zeros((40, 60), bool)
    mask[15:25, 25:35] = True
    return mean, mask


def test_map_panels_share_one_colour_scale_and_show_their_maps() -> None:
    grid = small_grid(40, 60)
    mean, mask = _maps()
    truth = np.where(mask, 97.0, 37.0)
    with_gap = mean.copy()
    with_gap[0, 0] = np.nan
    figure = map_panels({"push 4": {"truth": truth, "ToF": with_gap}}, grid, vmax_kpa=120.0, inclusion_mask=mask,
                        push_lateral_mm={"push 4": -1.0})
    shown = {ax.get_title(): ax.images[0] for ax in figure.axes if ax.images}
    np.testing.assert_array_equal(shown["truth"].get_array(), truth)
    assert {image.get_clim() for image in shown.values()} == {(0.0, 120.0)}
    # A failed estimate is masked (drawn grey), not shown as zero.
    assert np.ma.is_masked(shown["ToF"].get_array()[0, 0])
    ax = next(ax for ax in figure.axes if ax.get_title() == "ToF")
    assert any(np.allclose(line.get_xdata(), -1.0) for line in ax.lines)
    left, right, bottom, top = shown["truth"].get_extent()
    assert left < grid.lateral_m[0] * 1e3 < grid.lateral_m[-1] * 1e3 < right and top < bottom


def test_mae_figure_draws_each_interval_and_never_below_zero() -> None:
    figure = mae_vs([17.42, 37.55], {"CNN": [(5.0, 4.0, 6.5), (6.0, np.nan, np.nan)], "ToF": [(9.0, 7.0, 12.0), (12.0, 10.0, 15.0)]},
                    xlabel="E (kPa)")
    ax = figure.axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["CNN", "ToF"]
    bars = {bar.get_label(): bar for bar in ax.containers}
    line, caps, _ = bars["ToF"].lines
    np.testing.assert_array_equal(line.get_ydata(), [9.0, 12.0])
    np.testing.assert_allclose(sorted(np.concatenate([cap.get_ydata() for cap in caps])), [7.0, 10.0, 12.0, 15.0])
    # A point without an interval (one position) gets a bar of zero length, not a made-up one.
    line, caps, _ = bars["CNN"].lines
    assert sorted(np.concatenate([cap.get_ydata() for cap in caps])) == [4.0, 6.0, 6.0, 6.5]
    assert ax.get_ylim()[0] == 0

    figure = dice_curves([10, 50, 90], {"65": [0.2, 0.9, 0.1]}, marked_threshold_kpa=67.38)
    curve = next(line for line in figure.axes[0].lines if line.get_label() == "65")
    np.testing.assert_array_equal(curve.get_xydata(), [[10, 0.2], [50, 0.9], [90, 0.1]])


def _metrics() -> dict:
    method = {"mae_push_zone_kpa": [6.0, 5.0, 7.0], "mae_outside_push_zone_kpa": [4.0, 3.5, 4.5], "pearson": 0.95,
              "failed_fraction": 0.0}
    return {
        "study": {"scale": "test", "protocol_text": "3-fold CV", "window_px": 17, "epochs": 3, "alpha_concentration_pct": 10.0},
        "blocks": {
            "test_sequences": 12, "test_positions": 4,
            "methods": {
                "cnn": {**method, "label": "CNN (17 px)", "mae_kpa": [5.0, 4.0, 6.0]},
                "tof_robust": {**method, "label": "ToF, robust alpha", "mae_kpa": [9.0, 8.0, 10.5], "alpha": 0.7,
                               "alpha_rule": "robust", "failed_fraction": 0.1, "cnn_margin_kpa": [-4.0, -5.0, -3.0]},
                "training_mean": {**method, "label": "training mean", "mae_kpa": [30.0, 20.0, 40.0], "pearson": float("nan"),
                                  "cnn_margin_kpa": [-25.0, -35.0, -15.0]},
                "amplitude": {**method, "label": "amplitude regression", "mae_kpa": [5.5, 3.0, 8.0],
                              "cnn_margin_kpa": [-0.5, -2.0, 1.0]},
            },
            "by_concentration": [{"concentration_pct": 10.0, "label_kpa": 54.0, "sequences": 12, "positions": 4,
                                  "mae_kpa": {"cnn": [5.0, 4.0, 6.0], "tof_robust": [9.0, 8.0, 10.5],
                                              "training_mean": [30.0, 20.0, 40.0], "amplitude": [5.5, 3.0, 8.0]}}],
            "by_push": [{"push": 1, "sequences": 6, "mae_kpa": {"cnn": [5.0, 4.0, 6.0], "tof_robust": [9.0, 8.0, 10.5],
                                                                "training_mean": [30.0, 20.0, 40.0], "amplitude": [5.5, 3.0, 8.0]}}],
            "amplitude_invariance": {"gains": [0.5, 2.0], "median_relative_change": 0.0, "limit": 0.05, "holds": True},
            "push_independence": {"ratio": 2.0, "holds": False, "limit": 1.5, "unseen_pushes": [1, 7],
                                  "mae_unseen_pushes_kpa": [8.0, 7.0, 9.0], "mae_trained_pushes_kpa": [4.0, 3.0, 5.0]},
        },
        "calibration": [{"batch_id": "B1-10.0", "concentration_pct": 10.0, "e_kpa": 54.0, "ci95_kpa": [52.0, 56.0],
                         "cylinders": 3, "sample_sd_kpa": 1.5, "calibration_id": "cal-B1-10.0-20261128T100000", "figure": None}],
        "provenance": {"software": "shearlab test"},
    }


INCLUSIONS = {"circular": {"threshold_kpa": 66.6, "methods": {
    "cnn": {"label": "CNN fine-tuned (17 px)", "dice": 0.88, "mae_inclusion_kpa": 12.8, "mae_background_kpa": 16.8},
    "tof_paper": {"label": "ToF, paper's alpha", "dice": 0.65, "mae_inclusion_kpa": 13.3, "mae_background_kpa": 27.1},
    "tof_robust": {"label": "ToF, robust alpha", "dice": 0.58, "mae_inclusion_kpa": 10.2, "mae_background_kpa": None}}}}


def test_findings_say_who_wins_by_how_much_and_what_does_not_hold() -> None:
    lines = findings(_metrics() | {"inclusions": INCLUSIONS})
    text = " ".join(lines)
    assert "The CNN beats ToF, robust alpha by 4.00 kPa (95 % interval 3.00 to 5.00)" in text
    assert "cannot be told apart" in text and "amplitude regression" in text
    assert "Amplitude invariance holds" in text
    assert "NOT independent" in text
    assert kpa([5.0, None, None]) == "5.00 kPa" and kpa(None) == "n/a"
    # Every ToF is named beside the CNN on an inclusion, the paper's one too.
    assert ("circular: Dice at 66.6 kPa and MAE inside/outside the inclusion: CNN fine-tuned (17 px) 0.88, 12.8/16.8 kPa; "
            "ToF, robust alpha 0.58, 10.2/n/a kPa; ToF, paper's alpha 0.65, 13.3/27.1 kPa.") in lines


def test_report_is_a_page_with_the_answer_tables_and_figures(tmp_path: Path) -> None:
    grid = small_grid(40, 60)
    mean, mask = _maps()
    figure = save_figure(map_panels({"map": {"CNN": mean}}, grid, vmax_kpa=100.0, inclusion_mask=mask), tmp_path / "fig9.png")
    assert imread(figure).shape[0] > 100
    out = tmp_path / "report"
    html_path = write_report(out, _metrics(), [figure], captions={"fig9.png": "Fig. 9: a map."})
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["blocks"]["methods"]["training_mean"]["pearson"] is None
    page = html_path.read_text()
    assert "Does a spatio-temporal CNN beat time of flight?" in page
    assert "5.00 kPa [4.00, 6.00]" in page and "Fig. 9: a map." in page and (out / "fig9.png").exists()
    assert "cal-B1-10.0-20261128T100000" in page and "n/a" in page
    # The by-push table has a column per method: each interval sits under its value, so the table fits the page.
    assert '1 (never trained on)</td>\n<td class="num">6</td><td class="num">5.00 kPa<br><span class="ci">[4.00, 6.00]</span>' in page
    assert (out / "summary.md").read_text().startswith("| method |")
