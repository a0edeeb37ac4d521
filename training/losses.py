"""The training loss: the paper's MSE on the estimate, plus a log-normal likelihood for a sigma head.

A net without a sigma head trains on the mean squared error in kPa^2 (paper). With one
(``ModelConfig.sigma_head``), the head is trained by the negative log-likelihood of the label under
``log E ~ N(log estimate, sigma^2)`` (SweiNet's log-normal, arXiv 2203.10678): a relative uncertainty, as
the error of a modulus grows with the modulus. The estimate enters the likelihood detached, so the
estimate is trained by the MSE alone, exactly as without the head: the head learns how far to trust
it and cannot buy a lower likelihood by moving it (the known failure of training mean and variance
together, Seitzer et al., ICLR 2022). Nor can it through the features they share: the head reads them
detached (``DenseNet3d.distribution``), so every layer below it trains on the MSE alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shearlab.training.model import DenseNet3d

# Estimates are floored here inside the likelihood: an untrained net can predict zero or less, whose log
# is undefined; no gel of the study is anywhere near as soft (softest ~17 kPa).
_MIN_ESTIMATE_KPA = 1.0
# Bounds on log sigma inside the likelihood: 0.1 % to 20x relative spread, far outside anything a
# trained head predicts, only keeping the first steps finite.
_LOG_SIGMA_RANGE = (-7.0, 3.0)


def lognormal_nll(label_kpa: torch.Tensor, estimate_kpa: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (nats, without the constant) of ``label_kpa`` under a log-normal
    with median ``estimate_kpa`` and log-space sigma ``exp(log_sigma)``; all ``(batch,)``."""
    log_sigma = log_sigma.float().clamp(*_LOG_SIGMA_RANGE)
    residual = torch.log(label_kpa.float()) - torch.log(estimate_kpa.float().clamp(min=_MIN_ESTIMATE_KPA))
    return (log_sigma + 0.5 * (residual * torch.exp(-log_sigma)) ** 2).mean()


def regression_loss(model: DenseNet3d, windows: torch.Tensor, label_kpa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss to minimise, MSE in kPa^2)`` of a batch of windows ``(batch, 1, frames, w, w)``."""
    if model.sigma_head is None:
        mse = F.mse_loss(model(windows).float(), label_kpa.float())
        return mse, mse
    estimate, log_sigma = model.distribution(windows)
    mse = F.mse_loss(estimate.float(), label_kpa.float())
    return mse + lognormal_nll(label_kpa, estimate.detach(), log_sigma), mse
