"""Quality figures of one push/image sequence: how coherent its echoes are and how far its motion
stands above the estimator's noise. The pass/fail decision that uses them lives with the acquisition
procedure (``orchestrator/procedures/qc.py``); these are the measurements.
"""

from __future__ import annotations

import numpy as np

from shearlab.protocols.signal.loupas import validate_iq


def displacement_peak_um(displacement_um: np.ndarray) -> float:
    """Peak displacement, um: the 99.9th percentile of |d| (robust to a few outlier pixels)."""
    return float(np.percentile(np.abs(displacement_um), 99.9, overwrite_input=True))


def displacement_snr_db(displacement_um: np.ndarray, *, peak_um: float | None = None) -> float:
    """Peak displacement over the frame-to-frame jitter floor, dB.

    The jitter is the robust spread of the second temporal difference (it removes the smooth
    shear-wave motion, leaving estimator noise); the peak is ``displacement_peak_um`` (pass it if
    already known: a percentile of a sequence costs a third of this function).
    """
    d = np.asarray(displacement_um, dtype=np.float32)
    # In float32, the volume's own precision: float64 doubled the memory every selection walks through.
    second = d[2:] - 2 * d[1:-1] + d[:-2]
    # Medians do not depend on the order of their input: each works in place on an array made for it
    # (the same figures, without two 20 MB copies per sequence).
    centre = np.median(second, overwrite_input=True)
    deviation = np.abs(np.subtract(second, centre, out=second), out=second)
    # Var of a second difference of white noise is 6 sigma^2.
    noise = 1.4826 * float(np.median(deviation, overwrite_input=True)) / np.sqrt(6)
    peak = displacement_peak_um(d) if peak_um is None else peak_um
    return float(20 * np.log10(peak / max(noise, 1e-9)))


def frame_correlation(iq: np.ndarray) -> np.ndarray:
    """Zero-lag normalised correlation of every frame with the reference frame 0.

    ``|sum conj(IQ_0) IQ_n| / sqrt(sum |IQ_0|^2 sum |IQ_n|^2)`` over the whole image. Tissue imaged through
    a coupled probe gives values near 1 (shear-wave motion of a few um turns the phase by well under a
    radian); frames without acoustic contact are electronic noise, independent from frame to frame,
    giving ~1 / sqrt(pixels) (about 0.002 on a 250 x 600 image). A QC can therefore threshold it, e.g. at
    0.5.

    Parameters
    ----------
    iq : np.ndarray
        Complex IQ, shape ``(1 + frames, depth, lateral)``.

    Returns
    -------
    np.ndarray
        float64, shape ``(frames,)``: correlation of frames 1.. with frame 0, in [0, 1].
    """
    validate_iq(iq, min_frames=2)
    reference = iq[0].ravel()
    tracking = iq[1:].reshape(iq.shape[0] - 1, -1)
    cross = np.abs(tracking @ np.conj(reference)).astype(np.float64)
    power = np.einsum("ij,ij->i", np.conj(tracking), tracking).real.astype(np.float64)
    denominator = np.sqrt(float(np.vdot(reference, reference).real) * power)
    correlation: np.ndarray = np.divide(cross, denominator, out=np.zeros_like(cross), where=denominator > 0)
    return correlation


__all__ = ["displacement_peak_um", "displacement_snr_db", "frame_correlation"]
