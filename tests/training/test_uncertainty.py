"""The CNN's uncertainty: a sigma head exact densely, a likelihood that learns a known noise, and intervals
whose coverage is checked on data whose noise is known."""

import numpy as np
import pytest
import scipy.stats
import torch

from shearlab.training.config import TrainConfig
from shearlab.training.inference import predict_dense, predict_dense_distribution
from shearlab.training.losses import lognormal_nll, regression_loss
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.normalisation import normalise_volume
from shearlab.training.synthetic import shear_wave_volume, small_grid
from shearlab.training.trainer import train
from shearlab.training.uncertainty import (
    ONE_SIGMA_LEVEL,
    REPORTED_LEVELS,
    SigmaCalibration,
    coverage,
    standardised_log_error,
    sweinet_calibration_error,
)
from shearlab.training.windows import VolumeWindowDataset


def _net(window_px: int, *, sigma_head: bool, seed: int = 0) -> DenseNet3d:
    torch.manual_seed(seed)
    return DenseNet3d.from_config(model_config_for_window(window_px, init_channels=3, growth_rate=3, sigma_head=sigma_head))


@pytest.mark.parametrize("window_px", [9, 17])
def test_the_sigma_head_is_exact_densely_and_leaves_the_estimate_alone(window_px):
    model = _net(window_px, sigma_head=True).eval()
    with torch.no_grad():
        for parameter in model.sigma_head.parameters():
            parameter.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    volume = np.random.default_rng(0).standard_normal((35, window_px + 6, window_px + 9)).astype(np.float32)
    estimate, sigma = predict_dense_distribution(model, volume, tile_px=4)
    field = torch.from_numpy(normalise_volume(volume))[None, None]
    windows = field.unfold(3, window_px, 1).unfold(4, window_px, 1).permute(0, 3, 4, 1, 2, 5, 6)
    windows = windows.reshape(-1, 1, 35, window_px, window_px)
    with torch.no_grad():
        one_by_one, log_sigma = model.distribution(windows)
    h = window_px // 2
    inner = (slice(h, h + 7), slice(h, h + 10))
    assert np.abs(estimate[inner] - one_by_one.numpy().reshape(7, 10)).max() <= 1e-3
    assert np.abs(sigma[inner] - log_sigma.exp().numpy().reshape(7, 10)).max() <= 1e-4
    assert np.ptp(sigma[inner]) > 1e-3, "a constant sigma would make the comparison vacuous"
    # The one-output path gives the same estimate, and the head adds nothing to a net without it.
    np.testing.assert_allclose(predict_dense(model, volume), estimate, atol=1e-4)
    plain = _net(window_px, sigma_head=False).eval()
    assert set(model.state_dict()) - set(plain.state_dict()) == {k for k in model.state_dict() if k.startswith("sigma_head.")}
    for key, value in plain.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    with pytest.raises(ValueError, match="sigma_head=True"):
        plain.distribution(windows[:2])


def test_the_likelihood_is_smallest_at_the_true_spread_and_never_moves_the_estimate():
    rng = np.random.default_rng(0)
    estimate = torch.full((20000,), 50.0)
    label = estimate * torch.from_numpy(np.exp(0.2 * rng.standard_normal(20000))).float()
    spreads = np.linspace(0.05, 0.6, 56)
    losses = [lognormal_nll(label, estimate, torch.full((20000,), float(np.log(s)))).item() for s in spreads]
    assert spreads[int(np.argmin(losses))] == pytest.approx(0.2, abs=0.015)
    model = _net(5, sigma_head=True)
    with torch.no_grad():  # a head that has learnt something (a fresh one's last layer is zero: no gradient below it)
        for parameter in model.sigma_head.parameters():
            parameter.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    windows = torch.randn(6, 1, 35, 5, 5)
    loss, mse = regression_loss(model, windows, torch.full((6,), 40.0))
    loss.backward()
    # Every layer the estimate comes from learns from the MSE alone: its gradient is the MSE's.
    estimate_grads = {k: p.grad.clone() for k, p in model.named_parameters() if not k.startswith("sigma_head.")}
    assert model.sigma_head.out.weight.grad.abs().sum() > 0, "the head itself learns from the likelihood"
    model.zero_grad()
    mse_only = torch.nn.functional.mse_loss(model(windows), torch.full((6,), 40.0))
    mse_only.backward()
    for key, parameter in model.named_parameters():
        if key in estimate_grads:
            torch.testing.assert_close(estimate_grads[key], parameter.grad, msg=key)
    assert mse.item() == pytest.approx(mse_only.item(), rel=1e-5)


def test_calibration_makes_intervals_hold_on_new_data_with_known_noise():
    """Estimates off by a log-normal factor of known spread 0.15, with a head that says 0.05: raw intervals
    are far too narrow; calibrated on one half, they hold on the other at every level."""
    rng = np.random.default_rng(4)
    truth = rng.uniform(17, 126, 40000)
    estimate = truth * np.exp(0.15 * rng.standard_t(df=5, size=truth.size) / np.sqrt(5 / 3))
    raw_sigma = np.full(truth.size, 0.05)
    abs_z = np.abs(standardised_log_error(estimate, raw_sigma, truth))
    raw = coverage(abs_z, SigmaCalibration.gaussian(), REPORTED_LEVELS)
    assert raw[1] < 0.4, "a head three times too confident covers far less than 68 %"
    calibration = SigmaCalibration.fit(abs_z[:20000], fitted_on="first half")
    held = coverage(abs_z[20000:], calibration, REPORTED_LEVELS)
    np.testing.assert_allclose(held, REPORTED_LEVELS, atol=0.01)
    # Sigma is the standard deviation; with these heavy tails the 68.27 % interval is narrower.
    assert calibration.sigma(np.array([0.05]))[0] == pytest.approx(0.15, rel=0.05)
    half_width = 0.15 * scipy.stats.t.ppf((1 + ONE_SIGMA_LEVEL) / 2, df=5) / np.sqrt(5 / 3)
    assert calibration.multiplier(ONE_SIGMA_LEVEL) * 0.05 == pytest.approx(half_width, rel=0.03)
    low, high = calibration.interval_kpa(np.array([50.0]), np.array([0.05]), 0.95)
    assert low[0] < 50 < high[0] and high[0] / 50 == pytest.approx(50 / low[0])
    log_error = np.log(truth) - np.log(estimate)
    assert sweinet_calibration_error(log_error[20000:], calibration.sigma(raw_sigma[20000:]))["error_pct"] < 5
    assert sweinet_calibration_error(log_error, raw_sigma)["error_pct"] > 150


def test_calibration_tables_are_checked():
    assert SigmaCalibration.gaussian().multiplier(ONE_SIGMA_LEVEL) == pytest.approx(1.0, abs=1e-6)
    assert SigmaCalibration.gaussian().multiplier(0.95) == pytest.approx(1.96, abs=1e-3)
    with pytest.raises(ValueError, match="grow"):
        SigmaCalibration(levels=(0.5, 0.9), multipliers=(1.0, 0.5))
    with pytest.raises(ValueError, match="outside"):
        SigmaCalibration.gaussian().multiplier(0.999)


@pytest.mark.slow
def test_a_trained_head_learns_the_label_noise_it_cannot_predict():
    """Waves of known speed with labels scattered by a log-normal of spread 0.25 that no window can
    reveal: the head's raw sigma on new waves comes out near 0.25, and its intervals near nominal."""
    rng = np.random.default_rng(0)
    grid = small_grid(16, 40)

    def waves(n: int) -> tuple[list[np.ndarray], list[float]]:
        moduli = rng.uniform(20, 120, n)
        volumes = [shear_wave_volume(grid, speed_m_s=float(np.sqrt(e * 1e3 / 3 / 1000)), push_lateral_m=-4e-3, rng=rng)
                   for e in moduli]
        return volumes, (moduli * np.exp(0.25 * rng.standard_normal(n))).tolist()

    train_volumes, train_labels = waves(300)
    test_volumes, test_labels = waves(120)
    model = _net(9, sigma_head=True)
    config = TrainConfig(epochs=25, batch_size=50, lr=3e-3, seed=0, device="cpu", mixed_precision=False)
    train(model, VolumeWindowDataset(train_volumes, train_labels, 9, seed=0), None, config)
    data = VolumeWindowDataset(test_volumes, test_labels, 9, seed=1)
    windows = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        estimate, log_sigma = model.eval().distribution(windows)
    raw_sigma = log_sigma.exp().numpy()
    assert np.median(raw_sigma) == pytest.approx(0.25, rel=0.3)
    abs_z = np.abs(standardised_log_error(estimate.numpy(), raw_sigma, np.array(test_labels)))
    observed = coverage(abs_z, SigmaCalibration.gaussian(), REPORTED_LEVELS)
    np.testing.assert_allclose(observed, REPORTED_LEVELS, atol=0.1)
