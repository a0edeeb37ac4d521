import json

import numpy as np
import pytest
from matplotlib.image import imread

from shearlab.training.figures import dice_curves, inclusion_maps, mae_vs, mean_std_maps, save_figure
from shearlab.training.report import write_report
from shearlab.training.synthetic import small_grid


def _maps() -> tuple[np.ndarray, np.ndarray]:
    mean = np.random.default_rng(0).uniform(20, 80, (40, 60))
    mask = np.zeros((40, 60), bool)
    mask[15:25, 25:35] = True
    return mean, mask


def test_map_figures_show_the_maps_they_were_given():
    grid = small_grid(40, 60)
    mean, mask = _maps()
    figure = mean_std_maps(mean, mean * 0.1, grid, roi=(slice(5, 35), slice(10, 50)), push_lateral_mm=-1.0, title="push 4")
    mean_ax, std_ax = figure.axes[:2]
    np.testing.assert_array_equal(mean_ax.images[0].get_array(), mean)
    np.testing.assert_array_equal(std_ax.images[0].get_array(), mean * 0.1)
    # The push is marked where it fired, in mm across the probe.
    assert any(np.allclose(line.get_xdata(), -1.0) for line in mean_ax.lines)
    # Image extent is the grid's, in mm: lateral across, depth downwards.
    left, right, bottom, top = mean_ax.images[0].get_extent()
    assert left < grid.lateral_m[0] * 1e3 < grid.lateral_m[-1] * 1e3 < right and top < bottom

    truth = np.where(mask, 97.0, 37.0)
    figure = inclusion_maps({"truth": truth, "ToF": mean}, grid, inclusion_mask=mask, vmax_kpa=120.0)
    shown = {ax.get_title(): ax.images[0] for ax in figure.axes if ax.images}
    np.testing.assert_array_equal(shown["truth"].get_array(), truth)
    assert shown["ToF"].get_clim() == (0.0, 120.0)


def test_line_figures_plot_the_numbers_they_were_given():
    figure = mae_vs([17.42, 37.55], {"CNN": [(5.0, 1.0), (6.0, 2.0)], "ToF": [(9.0, 3.0), (12.0, 4.0)]}, xlabel="E (kPa)")
    ax = figure.axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["CNN", "ToF"]
    # One error bar per method: the means at the given stiffnesses (offset sideways a little), +/- the std.
    bars = {bar.get_label(): bar for bar in ax.containers}
    for name, means, stds in (("CNN", [5.0, 6.0], [1.0, 2.0]), ("ToF", [9.0, 12.0], [3.0, 4.0])):
        data_line, caps, _ = bars[name].lines
        np.testing.assert_array_equal(data_line.get_ydata(), means)
        np.testing.assert_allclose(data_line.get_xdata(), [17.42, 37.55], atol=0.02 * (37.55 - 17.42))
        np.testing.assert_allclose(sorted(np.concatenate([cap.get_ydata() for cap in caps])),
                                   sorted(np.concatenate([np.subtract(means, stds), np.add(means, stds)])))

    figure = dice_curves([10, 50, 90], {"65": [0.2, 0.9, 0.1]}, marked_threshold_kpa=67.38)
    ax = figure.axes[0]
    curve = next(line for line in ax.lines if line.get_label() == "65")
    np.testing.assert_array_equal(curve.get_xydata(), [[10, 0.2], [50, 0.9], [90, 0.1]])
    assert any(np.allclose(line.get_xdata(), 67.38) for line in ax.lines if line is not curve)


def test_saved_figures_are_images_of_the_figure_and_the_report_links_them(tmp_path):
    grid = small_grid(40, 60)
    mean, mask = _maps()
    uniform = save_figure(inclusion_maps({"flat": np.full_like(mean, 50.0)}, grid, vmax_kpa=100.0), tmp_path / "flat.png")
    textured = save_figure(inclusion_maps({"map": mean}, grid, inclusion_mask=mask, vmax_kpa=100.0), tmp_path / "fig9.png")
    again = save_figure(inclusion_maps({"map": mean}, grid, inclusion_mask=mask, vmax_kpa=100.0), tmp_path / "again.png")
    flat_pixels, map_pixels = imread(uniform), imread(textured)
    assert map_pixels.shape == flat_pixels.shape and map_pixels.shape[0] > 100 and map_pixels.shape[1] > 100
    # The map fills much of the image: a flat map and a random one differ over a large part of it, and
    # the same map drawn twice is the same image.
    assert np.any(map_pixels != flat_pixels, axis=-1).mean() > 0.2
    np.testing.assert_array_equal(imread(again), map_pixels)

    out = tmp_path / "report"
    html_path = write_report(out, {"homogeneous": {"cnn": {"mae_kpa": 5.01, "pearson": float("nan")}},
                                   "alpha": 0.75}, [textured])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["homogeneous"]["cnn"] == {"mae_kpa": 5.01, "pearson": None}
    text = html_path.read_text()
    assert "fig9.png" in text and (out / "fig9.png").exists()
    assert "missing" in text and "5.01" in text
    assert imread(out / "fig9.png").shape == map_pixels.shape


@pytest.mark.parametrize("vmax", [None, 100.0])
def test_inclusion_maps_share_one_colour_scale(vmax):
    grid = small_grid(40, 60)
    mean, _ = _maps()
    figure = inclusion_maps({"a": mean, "b": mean / 2}, grid, vmax_kpa=vmax)
    limits = {ax.images[0].get_clim() for ax in figure.axes if ax.images}
    assert len(limits) == 1 and next(iter(limits))[1] == (vmax or mean.max())
