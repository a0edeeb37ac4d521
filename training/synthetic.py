"""Synthetic shear-wave data for tests, benchmarks and demos: a pulse whose speed is known exactly.

A line source at lateral position ``x0`` (spanning depth around ``z0``) launches a Gaussian-in-time pulse
travelling at speed ``c`` in both lateral directions, with cylindrical spreading ``1 / sqrt(r)``:

    u(t, z, x) = A exp(-(z - z0)^2 / (2 s_z^2)) exp(-(t - t0 - |x - x0| / c)^2 / (2 s_t^2)) / sqrt(max(|x - x0|, r0) / r0)

This is not the twin's physics (no viscosity, no near field); it is a signal whose speed is known exactly.
``synthetic_record`` and ``write_synthetic_session`` wrap it in session files with plausible metadata, so
the file layer and the window pipeline can be tested without the twin.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shearlab.datasets.records import Label, QcResult, SequenceRecord, SessionInfo, sequence_key
from shearlab.datasets.writer import SessionWriter
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, ImageGrid, ImagingSpec, RoiSpec, SequenceSpec
from shearlab.protocols.signal.modulus import modulus_to_speed_m_s

# The paper's pixel pitch: 20 mm / 250 px deep, 33 mm / 600 px wide.
_PAPER = ImagingSpec()
DEPTH_PITCH_MM = _PAPER.depth_mm / _PAPER.n_depth
LATERAL_PITCH_MM = _PAPER.width_mm / _PAPER.n_lateral
# The paper's probe aperture across which the push positions are spread, m.
_PAPER_WIDTH_M = _PAPER.width_mm * 1e-3


def small_sequence_spec(n_frames: int = 35, n_depth: int = 64, n_lateral: int = 96) -> SequenceSpec:
    """A sequence spec with the paper's pixel pitch and frame rate on a smaller grid."""
    return SequenceSpec(imaging=ImagingSpec(
        n_frames=n_frames, n_depth=n_depth, n_lateral=n_lateral,
        depth_mm=n_depth * DEPTH_PITCH_MM, width_mm=n_lateral * LATERAL_PITCH_MM,
    ))


def small_grid(n_depth: int, n_lateral: int, n_frames: int = 35) -> ImageGrid:
    """The pixel grid of ``small_sequence_spec``."""
    return small_sequence_spec(n_frames, n_depth, n_lateral).grid


def shear_wave_volume(grid: ImageGrid, *, speed_m_s: float, push_lateral_m: float, rng: np.random.Generator,
                      noise_um: float = 0.2, amplitude_um: float = 10.0, pulse_s: float = 0.25e-3,
                      onset_s: float = 0.0, depth_centre_m: float | None = None,
                      depth_sigma_m: float = 4e-3) -> np.ndarray:
    """Displacement ``(frames, depth, lateral)`` in um of a pulse leaving a line source at ``speed_m_s``."""
    t = grid.frame_times_s[:, None, None]
    z = grid.depth_m[None, :, None]
    x = grid.lateral_m[None, None, :]
    z0 = float(grid.depth_m.mean()) if depth_centre_m is None else depth_centre_m
    r = np.abs(x - push_lateral_m)
    r0 = 1e-3
    u = (amplitude_um * np.exp(-0.5 * ((z - z0) / depth_sigma_m) ** 2)
         * np.exp(-0.5 * ((t - onset_s - r / speed_m_s) / pulse_s) ** 2) / np.sqrt(np.maximum(r, r0) / r0))
    return (u + noise_um * rng.standard_normal(u.shape)).astype(np.float32)


def synthetic_session_info(session_id: str, *, concentration_pct: float = 10.0, kind: str = "block",
                           spec: SequenceSpec | None = None, store_iq: bool = False) -> SessionInfo:
    """A session description on ``spec`` (default ``small_sequence_spec()``) whose ROI is the middle
    half of the image in each direction, so that it fits small test grids."""
    spec = spec or small_sequence_spec()
    imaging = spec.imaging
    roi = RoiSpec(n_depth=max(imaging.n_depth // 2, 1), n_lateral=max(imaging.n_lateral // 2, 1),
                  depth_start_mm=imaging.depth_mm / 4)
    return SessionInfo(
        kind=kind, session_id=session_id, phantom=f"block-{concentration_pct:g}",  # type: ignore[arg-type]
        batch_id=f"batch-{concentration_pct:g}", concentration_pct=concentration_pct, rig_name="twin",
        sequence=spec, roi=roi, store_iq=store_iq, plan={"generator": "synthetic"},
    )


def synthetic_record(info: SessionInfo, position_index: int, push_index: int, *, seed: int = 0,
                     e_kpa: float | None = 54.0, failed: bool = False) -> SequenceRecord:
    """A reproducible sequence record for ``info``'s grid: a ``shear_wave_volume`` at the speed of
    ``e_kpa`` from the push's position (scaled to the grid's width); ``e_kpa=None`` leaves it unlabelled."""
    rng = np.random.default_rng([seed, position_index, push_index])
    grid = info.sequence.grid
    push_mm = PAPER_PUSH_LATERAL_MM[(push_index - 1) % len(PAPER_PUSH_LATERAL_MM)]
    push_m = push_mm * 1e-3 * np.ptp(grid.lateral_m) / _PAPER_WIDTH_M if grid.lateral_m.size > 1 else 0.0
    displacement = shear_wave_volume(grid, speed_m_s=modulus_to_speed_m_s(e_kpa or 54.0), push_lateral_m=push_m,
                                     rng=rng, noise_um=0.3, amplitude_um=5.0)
    n_force = 20
    iq = None
    if info.store_iq:
        iq = (rng.standard_normal(displacement.shape) + 1j * rng.standard_normal(displacement.shape)).astype(np.complex64)
    return SequenceRecord(
        key=sequence_key(position_index, push_index), position_index=position_index, push_index=push_index,
        push_lateral_mm=push_mm, probe_pose=np.array([0.1 + 0.001 * position_index, 0.2, 0.15, 0.0, 3.14159, 0.0]),
        displacement_um=None if failed else displacement,
        contact_force_n=(0.2 + 0.005 * rng.standard_normal(n_force)).astype(np.float32),
        contact_force_time_s=np.linspace(-0.01, 0.01, n_force),
        acquired_at=f"2026-11-25T10:{position_index % 60:02d}:{push_index:02d}.000+00:00",
        qc=QcResult(passed=not failed, reason="low SNR" if failed else "",
                    figures={"snr_db": float(25 + rng.standard_normal()), "peak_um": float(displacement.max())}),
        label=None if e_kpa is None or failed else Label(e_kpa=e_kpa, e_kpa_std=1.5, calibration_id=f"cal-{info.batch_id}"),
        iq=iq, attempt=3 if failed else 1, failed=failed, failure_reason="QC failed 3 times" if failed else "",
    )


def write_synthetic_session(path: Path | str, info: SessionInfo, *, positions: Iterable[int],
                            pushes: Iterable[int] = range(1, 8), seed: int = 0, e_kpa: float | None = 54.0,
                            failed_keys: Iterable[str] = ()) -> Path:
    """Write a complete synthetic session (every position x push) to ``path``; returns the path."""
    failed = set(failed_keys)
    pushes = list(pushes)
    with SessionWriter.open(path, session=info, resume=False, fsync=False) as writer:
        for position in positions:
            for push in pushes:
                key = sequence_key(position, push)
                writer.append_sequence(synthetic_record(info, position, push, seed=seed, e_kpa=e_kpa,
                                                        failed=key in failed))
    return Path(path)
