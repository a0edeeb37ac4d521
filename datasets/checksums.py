"""Checksums that tie a stored row to its data: a cryptographic hash over canonical metadata and array bytes.

Schema 4 hashes with BLAKE3: a 20 MiB displacement volume in 2.5 ms on one core here, where SHA-256
(with the CPU's SHA extensions) took 10 ms, and every append and every verified read pays it; ``b3sum``
recomputes it. Files of schema 3 carry SHA-256 digests of the same bytes and still verify, and a writer
resuming one keeps its algorithm (``checksum_algorithm``).

The metadata go in as canonical JSON of the values *as stored* (decoded strings, float64, ints), so
the writer and the reader compute the same digest from what each holds. A sequence's digest covers
everything its meaning depends on: the data, pose, timestamps and QC figures, its label with the label's
uncertainty and the calibration that produced it, the normalisation statistics training uses, and the
session's identity (batch, concentration, sequence definition). Relabelling a sequence
(``SessionWriter.set_label``) verifies the old digest and writes a new one. Calibration fits carry a
digest of their row.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import blake3
import numpy as np

ChecksumAlgorithm = Literal["sha256", "blake3"]

SEQUENCE_META_FIELDS: tuple[str, ...] = (
    "key", "position_index", "push_index", "push_lateral_mm", "probe_pose", "acquired_at", "attempt",
    "failed", "failure_reason", "qc_passed", "qc_reason", "qc_figures_json",
    "label_e_kpa", "label_e_kpa_std", "label_calibration_id", "displacement_mean_um", "displacement_std_um",
    # Not a column: the session's identity (``SessionInfo.identity``), which says what the numbers are of.
    "session",
)
INDENTATION_META_FIELDS: tuple[str, ...] = (
    "cylinder_index", "batch_id", "concentration_pct", "started_at", "contact_index", "stop_reason",
    "extra_json",
)
CALIBRATION_META_FIELDS: tuple[str, ...] = (
    "calibration_id", "batch_id", "concentration_pct", "e_kpa", "ci95_kpa", "cylinders", "sample_sd_kpa", "n_points",
    "r2", "strain_min", "strain_max", "fitted_at", "extra_json",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_canonical(v) for v in value.tolist()]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return _canonical(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def checksum_algorithm(schema_version: int) -> ChecksumAlgorithm:
    """The hash a session file of ``schema_version`` (3 or later) carries."""
    return "sha256" if schema_version <= 3 else "blake3"


def digest(meta: dict[str, Any], fields: tuple[str, ...], arrays: list[np.ndarray | None], *,
           algorithm: ChecksumAlgorithm) -> str:
    """Hex digest (32 bytes) of ``meta[fields]`` (canonical JSON) followed by each array's bytes.

    An absent array (``None``) contributes a marker, so "no IQ" and "empty IQ" differ.
    """
    h = hashlib.sha256() if algorithm == "sha256" else blake3.blake3()
    canonical = {name: _canonical(meta[name]) for name in fields}
    h.update(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for array in arrays:
        if array is None:
            h.update(b"\x00none")
            continue
        contiguous = np.ascontiguousarray(array)
        h.update(f"\x01{contiguous.dtype.str}{contiguous.shape}".encode())
        h.update(contiguous.data.cast("B"))
    return h.hexdigest()
