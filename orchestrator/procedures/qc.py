"""Quality gate for one push/image sequence: contact held, tissue moved, echoes coherent, and (with a model)
a map the model can vouch for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from shearlab.protocols.plans import QcSettings
from shearlab.protocols.signal.quality import displacement_peak_um, displacement_snr_db, frame_correlation

# The checks by name, in the order they are applied: a campaign counts its failures by these.
QcCheck = Literal["ok", "contact_force", "decorrelated", "peak_displacement", "displacement_snr", "shot_refused", "uncertain"]


@dataclass(frozen=True)
class QcVerdict:
    """``check`` names the first check that failed (``"ok"`` when none did); ``reason`` says it with the numbers."""

    passed: bool
    check: QcCheck
    reason: str
    figures: dict[str, float] = field(default_factory=dict)


def check_sequence(
    displacement_um: np.ndarray,
    iq: np.ndarray,
    *,
    force_before_n: float,
    force_after_n: float,
    target_force_n: float,
    settings: QcSettings,
) -> QcVerdict:
    """Apply every check; the reason names the first that failed."""
    peak_um = displacement_peak_um(displacement_um)
    figures = {
        "force_before_n": force_before_n,
        "force_after_n": force_after_n,
        "peak_um": peak_um,
        "frame_correlation": float(np.mean(frame_correlation(iq))),
        "displacement_snr_db": displacement_snr_db(displacement_um, peak_um=peak_um),
    }
    force_error = max(abs(force_before_n - target_force_n), abs(force_after_n - target_force_n))
    if force_error > settings.max_force_error_n:
        return QcVerdict(False, "contact_force", f"contact force off by {force_error:.3f} N during the shot", figures)
    if figures["frame_correlation"] < settings.min_frame_correlation:
        correlation = figures["frame_correlation"]
        return QcVerdict(False, "decorrelated", f"echoes decorrelated (correlation {correlation:.2f}): acoustic contact lost?", figures)
    if figures["peak_um"] < settings.min_peak_um:
        peak_um = figures["peak_um"]
        return QcVerdict(False, "peak_displacement", f"peak displacement {peak_um:.2f} um below {settings.min_peak_um} um", figures)
    if figures["displacement_snr_db"] < settings.min_displacement_snr_db:
        snr_db = figures["displacement_snr_db"]
        limit_db = settings.min_displacement_snr_db
        return QcVerdict(False, "displacement_snr", f"displacement SNR {snr_db:.1f} dB below {limit_db} dB", figures)
    return QcVerdict(True, "ok", "ok", figures)


def check_uncertainty(verdict: QcVerdict, roi_sigma: float | None, *, settings: QcSettings) -> QcVerdict:
    """The uncertainty gate after the signal checks: a sequence that passed them fails if its map's median
    calibrated relative sigma over the ROI (``roi_sigma``; None: the model gives no sigma) lies above
    ``settings.max_roi_sigma``."""
    if not verdict.passed or roi_sigma is None:
        return verdict
    figures = {**verdict.figures, "roi_sigma": roi_sigma}
    if roi_sigma > settings.max_roi_sigma:
        return QcVerdict(False, "uncertain", f"map too uncertain: median sigma {100 * roi_sigma:.1f} % of the estimate in the "
                                             f"ROI, above {100 * settings.max_roi_sigma:g} %", figures)
    return QcVerdict(True, "ok", "ok", figures)
