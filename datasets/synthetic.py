"""Synthetic sessions for tests, benchmarks and demos: plausible shapes and metadata, fake physics.

The displacement is a Gaussian shear pulse travelling laterally away from the push at a speed set by
the label (c = sqrt(E / (3 rho))), plus seeded noise: enough structure for the window pipeline and
the file layer, not a substitute for the digital twin.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shearlab.datasets.records import Label, QcResult, SequenceRecord, SessionInfo, sequence_key
from shearlab.datasets.writer import SessionWriter
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, ImagingSpec, RoiSpec, SequenceSpec


def small_sequence_spec(n_frames: int = 35, n_depth: int = 64, n_lateral: int = 96) -> SequenceSpec:
    """A sequence spec with the paper's pixel pitch on a smaller grid (0.08 x 0.055 mm pixels)."""
    return SequenceSpec(imaging=ImagingSpec(
        n_frames=n_frames, n_depth=n_depth, n_lateral=n_lateral,
        depth_mm=n_depth * 0.08, width_mm=n_lateral * 0.055,
    ))


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
    """A reproducible sequence record for ``info``'s grid; ``e_kpa=None`` leaves it unlabelled."""
    rng = np.random.default_rng([seed, position_index, push_index])
    grid = info.sequence.grid
    push_mm = PAPER_PUSH_LATERAL_MM[(push_index - 1) % len(PAPER_PUSH_LATERAL_MM)]
    push_m = push_mm * 1e-3 * np.ptp(grid.lateral_m) / 0.033 if grid.lateral_m.size > 1 else 0.0
    speed = np.sqrt((e_kpa or 54.0) * 1e3 / 3000.0)
    t = grid.frame_times_s[:, None, None]
    x = np.abs(grid.lateral_m[None, None, :] - push_m)
    z = grid.depth_m[None, :, None]
    envelope = np.exp(-((z - 0.01) / 0.004) ** 2)
    pulse = 5.0 * envelope * np.exp(-((x - speed * t) / 0.0008) ** 2)
    displacement = (pulse + 0.3 * rng.standard_normal(pulse.shape)).astype(np.float32)
    n_force = 20
    iq = None
    if info.store_iq:
        iq = (rng.standard_normal(pulse.shape) + 1j * rng.standard_normal(pulse.shape)).astype(np.complex64)
    return SequenceRecord(
        key=sequence_key(position_index, push_index), position_index=position_index, push_index=push_index,
        push_lateral_mm=push_mm, probe_pose=np.array([0.1 + 0.001 * position_index, 0.2, 0.15, 0.0, 3.14159, 0.0]),
        displacement_um=None if failed else displacement,
        contact_force_n=(0.2 + 0.005 * rng.standard_normal(n_force)).astype(np.float32),
        contact_force_time_s=np.linspace(-0.01, 0.01, n_force),
        acquired_at=f"2026-11-25T10:{position_index % 60:02d}:{push_index:02d}.000+00:00",
        qc=QcResult(passed=not failed, reason="low SNR" if failed else "",
                    figures={"snr_db": float(25 + rng.standard_normal()), "peak_um": float(pulse.max())}),
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
