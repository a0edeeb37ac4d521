import numpy as np
import pytest

from shearlab.protocols.stress_strain import CompressionRun, fit_modulus


def _run(e_pa, rng, *, toe=0.004, noise_n=1 / 320, length_mm=40.0, radius_mm=10.0):
    compression = np.linspace(0, 4.0, 800)
    eps = compression / length_mm
    eff = eps - toe * (1 - np.exp(-eps / toe)) if toe > 0 else eps
    force = e_pa * np.pi * (radius_mm * 1e-3) ** 2 * eff + rng.normal(0, noise_n, eps.size)
    return CompressionRun(compression_mm=compression, force_n=force, radius_mm=radius_mm, length_mm=length_mm)


def test_recovers_modulus_despite_toe_region():
    rng = np.random.default_rng(1)
    fit = fit_modulus([_run(54e3, rng) for _ in range(8)])
    # The toe is exp(-5) ~ 0.7 % developed by 2 % strain: E within 1 %.
    assert fit.e_kpa == pytest.approx(54.0, rel=0.01)
    assert fit.ci95_kpa < 0.5
    assert fit.r2 > 0.99
    assert fit.n_points == 8 * np.count_nonzero((np.linspace(0, 4, 800) / 40 >= 0.02) & (np.linspace(0, 4, 800) / 40 <= 0.07))


def test_interval_comes_from_the_spread_between_cylinders():
    """Cylinders of 50, 54 and 58 kPa: each slope is recovered, the interval is Student's t over the
    three (t(0.975, 2) = 4.303, s = 4 kPa), however many samples each curve holds."""
    rng = np.random.default_rng(2)
    fit = fit_modulus([_run(e, rng, toe=0.0, noise_n=1e-4) for e in (50e3, 54e3, 58e3)])
    assert fit.cylinder_e_kpa == pytest.approx((50.0, 54.0, 58.0), rel=1e-3)
    assert fit.cylinder_sd_kpa == pytest.approx(4.0, rel=1e-2)
    assert fit.ci95_kpa == pytest.approx(4.303 * 4.0 / np.sqrt(3), rel=1e-2)
    assert fit.sample_sd_kpa == pytest.approx(4.0 * np.sqrt(1 + 1 / 3), rel=1e-2)
    assert fit.e_kpa == pytest.approx(54.0, rel=1e-3)


def _every(run, step):
    return CompressionRun(compression_mm=run.compression_mm[::step], force_n=run.force_n[::step],
                          radius_mm=run.radius_mm, length_mm=run.length_mm)


def test_each_run_weighs_the_same_however_densely_it_was_logged():
    """A logging loop that falls behind logs some runs sparsely: the batch modulus of cylinders of 50 and
    58 kPa stays at their mean whether the stiff one is logged 10x denser or 10x sparser."""
    rng = np.random.default_rng(4)
    soft, stiff = _run(50e3, rng, toe=0.0, noise_n=1e-4), _run(58e3, rng, toe=0.0, noise_n=1e-4)
    dense_stiff = fit_modulus([_every(soft, 10), stiff]).e_kpa
    sparse_stiff = fit_modulus([soft, _every(stiff, 10)]).e_kpa
    assert dense_stiff == pytest.approx(54.0, rel=2e-3)
    assert sparse_stiff == pytest.approx(54.0, rel=2e-3)


def test_one_cylinder_gives_no_interval():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="at least 2 cylinders"):
        fit_modulus([_run(54e3, rng)])


def test_only_samples_in_strain_range_count():
    run = CompressionRun(compression_mm=np.array([0.1, 0.2, 0.4]), force_n=np.array([0.01, 0.02, 0.04]))
    with pytest.raises(ValueError, match="0 of 2 runs"):
        fit_modulus([run, run])


def test_rejects_mismatched_arrays():
    with pytest.raises(ValueError, match="same shape"):
        fit_modulus([CompressionRun(compression_mm=np.zeros(3), force_n=np.zeros(4))])


def test_stress_strain_figure_plots_every_run_and_the_fit():
    from shearlab.datasets.records import CalibrationFit
    from shearlab.orchestrator.figures import stress_strain_figure

    rng = np.random.default_rng(2)
    runs = [_run(54e3, rng) for _ in range(3)]
    fit = fit_modulus(runs)
    record = CalibrationFit(calibration_id="cal-x", batch_id="B", concentration_pct=10.0, e_kpa=fit.e_kpa,
                            ci95_kpa=(fit.e_kpa - 1, fit.e_kpa + 1), cylinders=3, sample_sd_kpa=fit.sample_sd_kpa,
                            n_points=fit.n_points, r2=fit.r2,
                            strain_min=0.02, strain_max=0.07, extra={"intercept_kpa": fit.intercept_kpa})
    ax = stress_strain_figure(runs, record).axes[0]
    *run_lines, fit_line = ax.lines
    assert len(run_lines) == 3
    for line, run in zip(run_lines, runs, strict=True):
        np.testing.assert_allclose(line.get_xdata(), run.strain() * 100)
        np.testing.assert_allclose(line.get_ydata(), run.stress_pa() / 1e3)
    x, y = fit_line.get_xdata(), fit_line.get_ydata()
    assert x[0] == pytest.approx(2.0) and x[-1] == pytest.approx(7.0)
    # Slope in kPa per % strain is E / 100.
    assert np.polyfit(x, y, 1)[0] == pytest.approx(fit.e_kpa / 100)
