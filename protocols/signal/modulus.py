"""From a shear-wave speed to a Young's modulus, and the calibration factor alpha that ties the two.

Paper Eq. 1: ``E = alpha rho 2 (1 + nu) c^2`` with rho = 1000 kg/m^3 and nu = 0.5, for any speed estimate
(time of flight, time to peak). ``alpha`` absorbs what separates a quasi-static indentation modulus from
the wave's dynamic modulus (and any estimator bias): it is fitted on one concentration whose indentation
modulus is known, by one of two rules:

- ``"mean"`` (the paper): the mean modulus estimate over that concentration's pixels equals its label;
- ``"robust"`` (ours): the *median* over the pixels outside the push zone equals it. Near the push the
  motion is relaxation, not a travelling wave, and a speed estimator whose span straddles the push reads
  far too fast there; a mean over those pixels pulls alpha down for every pixel of every concentration.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from shearlab.protocols.phantoms import DENSITY_KG_M3, POISSON_RATIO

AlphaRule = Literal["mean", "robust"]
ALPHA_RULES: tuple[AlphaRule, ...] = ("mean", "robust")


def speed_to_modulus_kpa(speed_m_s: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """``E = alpha rho 2 (1 + nu) c^2`` (paper Eq. 1), kPa, float64; NaN speeds stay NaN."""
    return alpha * DENSITY_KG_M3 * 2 * (1 + POISSON_RATIO) * np.square(np.asarray(speed_m_s, dtype=np.float64)) / 1e3


def modulus_to_speed_m_s(e_kpa: float, *, alpha: float = 1.0) -> float:
    """The speed whose modulus by Eq. 1 is ``e_kpa``, m/s."""
    return float(np.sqrt(e_kpa * 1e3 / (alpha * DENSITY_KG_M3 * 2 * (1 + POISSON_RATIO))))


def fit_alpha(speed_m_s: np.ndarray, e_label_kpa: float, *, rule: AlphaRule = "mean",
              outside_push: np.ndarray | None = None) -> float:
    """The alpha that makes one concentration's speed estimates give its label (module docstring).

    Parameters
    ----------
    speed_m_s
        Speed estimates of that concentration's pixels, m/s, any shape; NaN (failed) ones are ignored.
    e_label_kpa
        Its indentation (quasi-static) Young's modulus, kPa.
    rule
        ``"mean"`` (paper) or ``"robust"``.
    outside_push
        Boolean mask of ``speed_m_s``'s shape: the pixels outside the push zone (``"robust"`` only).
    """
    if not e_label_kpa > 0:
        raise ValueError(f"the label must be > 0 kPa, got {e_label_kpa}")
    unscaled = speed_to_modulus_kpa(speed_m_s)
    usable = np.isfinite(unscaled)
    if rule == "robust":
        if outside_push is None:
            raise ValueError("the robust rule needs the mask of pixels outside the push zone")
        usable &= np.asarray(outside_push, dtype=bool)
    elif rule != "mean":
        raise ValueError(f"rule must be one of {ALPHA_RULES}, got {rule!r}")
    if not usable.any():
        raise ValueError("no finite speed estimate to fit alpha on")
    centre = np.median(unscaled[usable]) if rule == "robust" else np.mean(unscaled[usable])
    return float(e_label_kpa / centre)


__all__ = ["ALPHA_RULES", "AlphaRule", "fit_alpha", "modulus_to_speed_m_s", "speed_to_modulus_kpa"]
