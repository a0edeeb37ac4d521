"""Reading session files: open with clear errors, list sequences, read and verify their data.

Files are opened read-only in SWMR mode when their format allows it, so a reader can follow a session
that is still being written (call ``SessionReader.refresh`` to see new rows) and can read a file whose
writer was killed. Only rows whose completion marker is set are returned unless asked otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pydantic import ValidationError

from shearlab.datasets.checksums import (
    CALIBRATION_META_FIELDS,
    INDENTATION_META_FIELDS,
    SEQUENCE_META_FIELDS,
    ChecksumAlgorithm,
    checksum_algorithm,
    digest,
)
from shearlab.datasets.errors import (
    CorruptSessionError,
    NotASessionFileError,
    SchemaVersionError,
    SessionFileError,
)
from shearlab.datasets.layout import (
    CALIBRATION,
    CALIBRATION_COLUMNS,
    CONTACT_FORCE,
    INDENTATION,
    INDENTATION_COLUMNS,
    INDENTATION_SAMPLES,
    OLDEST_READABLE_SCHEMA,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SEQUENCE_COLUMNS,
    SEQUENCES,
    Column,
)
from shearlab.datasets.records import (
    CalibrationFit,
    IndentationRecord,
    Label,
    QcResult,
    SequenceRecord,
    SessionInfo,
)
from shearlab.datasets.superblock import read_superblock
from shearlab.protocols.sequences import ImageGrid

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _looks_like_hdf5(path: Path) -> bool:
    with open(path, "rb") as fh:
        for offset in (0, 512, 1024, 2048, 4096):
            fh.seek(offset)
            if fh.read(8) == _HDF5_SIGNATURE:
                return True
    return False


def _open_for_writing(path: Path) -> bool:
    """Whether the superblock says a writer has (or had, if it was killed) the file open.

    A cleanly closed file must also reach its end-of-allocation address; an open for reading does not
    check that. Files still flagged as open for writing (live, or left by a killed writer) may
    legitimately end before it; their rows are guarded by completion markers and checksums instead.
    """
    try:
        sb = read_superblock(path)
    except ValueError:
        return False  # older superblock (no flags) or a damaged one: HDF5's own open judges it
    size = path.stat().st_size
    if sb.flags == 0 and size < sb.base + sb.eoa:
        raise CorruptSessionError(path, f"HDF5 file is truncated or damaged: {size} bytes, "
                                        f"its superblock says {sb.base + sb.eoa}")
    return sb.flags != 0


def open_h5_readonly(path: Path | str) -> h5py.File:
    """Open ``path`` read-only, in SWMR mode when a writer has it open; errors say what is wrong.

    Without HDF5 file locking, like the writer (which has its own lock), so that readers and the
    writer of a live session can be open at once, in one process or several. Only files flagged as
    open for writing are opened in SWMR mode: a SWMR reader retries every metadata read that fails
    its checksum, with growing sleeps, which turns a damaged closed file into minutes of waiting.
    """
    path = Path(path)
    if not path.is_file():
        raise NotASessionFileError(path, "file not found")
    try:
        is_hdf5 = _looks_like_hdf5(path)
    except OSError as exc:
        raise NotASessionFileError(path, f"cannot be read ({exc.strerror})") from None
    if not is_hdf5:
        raise NotASessionFileError(path, "not an HDF5 file")
    swmr = _open_for_writing(path)
    try:
        return h5py.File(path, "r", swmr=swmr, locking=False)
    except (OSError, RuntimeError, ValueError) as exc:  # h5py raises all three for damaged files
        raise CorruptSessionError(path, f"HDF5 file cannot be opened, truncated or damaged ({exc})") from None


def _check_schema(fh: h5py.File, path: Path) -> None:
    schema = fh.attrs.get("shearlab_schema")
    if schema is None:
        raise NotASessionFileError(path, "an HDF5 file, but not a shearlab session (no shearlab_schema attribute)")
    if schema != SCHEMA_NAME:
        raise NotASessionFileError(path, f"an HDF5 file of schema {schema!r}, not a shearlab session ({SCHEMA_NAME!r})")
    version = fh.attrs.get("schema_version")
    if not isinstance(version, int | np.integer):
        raise CorruptSessionError(path, "schema_version attribute is missing or not an integer")
    if int(version) > SCHEMA_VERSION:
        raise SchemaVersionError(
            path,
            f"written with schema version {int(version)} by shearlab {fh.attrs.get('software_version', '?')}; "
            f"this shearlab reads up to schema version {SCHEMA_VERSION}: upgrade shearlab to read it",
        )
    if int(version) < 1:
        raise CorruptSessionError(path, f"schema version {int(version)} is not valid")
    if int(version) < OLDEST_READABLE_SCHEMA:
        raise SchemaVersionError(
            path,
            f"written with schema version {int(version)}, whose checksums do not cover labels and calibration fits; "
            f"this shearlab reads schema versions {OLDEST_READABLE_SCHEMA}-{SCHEMA_VERSION}: re-acquire it, "
            "or read it with the shearlab that wrote it",
        )
    for table, columns in ((SEQUENCES, SEQUENCE_COLUMNS), (INDENTATION, INDENTATION_COLUMNS),
                           (CALIBRATION, CALIBRATION_COLUMNS)):
        for col in columns:
            if f"{table}/{col.name}" not in fh:
                raise CorruptSessionError(path, f"dataset /{table}/{col.name} is missing")
    for name in (f"{SEQUENCES}/displacement", f"{CONTACT_FORCE}/time_s", f"{CONTACT_FORCE}/force_n",
                 f"{INDENTATION_SAMPLES}/time_s", f"{INDENTATION_SAMPLES}/force_n",
                 f"{INDENTATION_SAMPLES}/plate_z_mm"):
        if name not in fh:
            raise CorruptSessionError(path, f"dataset /{name} is missing")


def _session_info(fh: h5py.File, path: Path) -> SessionInfo:
    try:
        return SessionInfo.model_validate_json(fh["entry"].attrs["session_json"])
    except (KeyError, ValidationError, ValueError) as exc:
        raise CorruptSessionError(path, f"session description is missing or invalid ({exc})") from None


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class SequenceRef:
    """Where one sequence lives and what a query or a training split needs to know about it.

    ``shape`` is ``(frames, depth, lateral)``; ``label_e_kpa`` is ``None`` when unlabelled.
    """

    path: Path
    session_id: str
    kind: str
    phantom: str
    batch_id: str
    concentration_pct: float | None
    row: int
    key: str
    position_index: int
    push_index: int
    push_lateral_mm: float
    qc_passed: bool
    failed: bool
    complete: bool
    has_displacement: bool
    label_e_kpa: float | None
    label_e_kpa_std: float | None
    label_calibration_id: str | None
    displacement_mean_um: float
    displacement_std_um: float
    shape: tuple[int, int, int]

    @property
    def id(self) -> str:
        """Globally unique name, ``session_id/key``: what splits and results refer to."""
        return f"{self.session_id}/{self.key}"


@dataclass(frozen=True)
class SequenceStatus:
    """A sequence's QC verdict, attempt, time, probe pose (UR convention, m and rad) and contact-force
    samples (N): what a live view needs, without the displacement."""

    qc_passed: bool
    qc_reason: str
    failed: bool
    attempt: int
    acquired_at: str
    probe_pose: np.ndarray
    contact_force_n: np.ndarray


class SessionReader:
    """Read-only view of one session file.

    Raises ``NotASessionFileError``, ``SchemaVersionError`` or ``CorruptSessionError`` (all
    ``SessionFileError``) when the file cannot be used; never a bare h5py error.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fh = open_h5_readonly(self.path)
        try:
            _check_schema(self._fh, self.path)
            self.info = _session_info(self._fh, self.path)
        except Exception:
            self._fh.close()
            raise
        self.schema_version = int(self._fh.attrs["schema_version"])
        self.checksum: ChecksumAlgorithm = checksum_algorithm(self.schema_version)
        self.software_version = str(self._fh.attrs.get("software_version", "unknown"))
        self.created_at = str(self._fh.attrs.get("created_at", ""))
        self._rows: dict[str, int] | None = None

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    @property
    def live(self) -> bool:
        """Opened in SWMR mode, so ``refresh`` can pick up rows a running writer adds."""
        return bool(self._fh.swmr_mode)

    def refresh(self) -> None:
        """See rows appended since opening (SWMR); a no-op for files opened without SWMR."""
        self._rows = None
        if not self.live:
            return
        def _refresh(_name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                obj.refresh()
        self._fh.visititems(_refresh)

    @property
    def grid(self) -> ImageGrid:
        seq = self._fh[SEQUENCES]
        return ImageGrid(depth_m=seq["depth_m"][:], lateral_m=seq["lateral_m"][:],
                         frame_times_s=seq["frame_times_s"][:])

    # -- tables -----------------------------------------------------------------------------------
    def _table(self, table: str, columns: tuple[Column, ...], key: str | None = None) -> dict[str, np.ndarray]:
        group = self._fh[table]
        try:
            # A writer grows every column before it writes a row, but the new extents reach the disk in
            # no particular order; a row exists once every column has it, and it was complete only if
            # its marker was set after a flush, so no marker may stand beyond the shortest column.
            n = min(group[col.name].shape[0] for col in columns)
            marker = group["complete"]
            if marker.shape[0] > n and marker[n:].any():
                raise CorruptSessionError(self.path, f"/{table}: a row is marked complete but its data are missing",
                                          key=key)
            data = {col.name: group[col.name][:n] for col in columns}
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            if isinstance(exc, SessionFileError):
                raise
            raise CorruptSessionError(self.path, f"cannot read /{table} ({exc})", key=key) from None
        return data

    def _sequence_table(self) -> dict[str, np.ndarray]:
        return self._table(SEQUENCES, SEQUENCE_COLUMNS)

    def sequences(self, *, include_incomplete: bool = False) -> list[SequenceRef]:
        """Every sequence row, in row order; half-written rows only when ``include_incomplete``."""
        t = self._sequence_table()
        shape = tuple(int(s) for s in self._fh[SEQUENCES]["displacement"].shape[1:])
        info = self.info
        refs = []
        for row in range(t["complete"].shape[0]):
            complete = bool(t["complete"][row])
            if not complete and not include_incomplete:
                continue
            label = _optional(float(t["label_e_kpa"][row]))
            refs.append(SequenceRef(
                path=self.path, session_id=info.session_id, kind=info.kind, phantom=info.phantom,
                batch_id=info.batch_id, concentration_pct=info.concentration_pct, row=row,
                key=_text(t["key"][row]), position_index=int(t["position_index"][row]),
                push_index=int(t["push_index"][row]), push_lateral_mm=float(t["push_lateral_mm"][row]),
                qc_passed=bool(t["qc_passed"][row]), failed=bool(t["failed"][row]), complete=complete,
                has_displacement=bool(t["has_displacement"][row]), label_e_kpa=label,
                label_e_kpa_std=None if label is None else float(t["label_e_kpa_std"][row]),
                label_calibration_id=None if label is None else _text(t["label_calibration_id"][row]),
                displacement_mean_um=float(t["displacement_mean_um"][row]),
                displacement_std_um=float(t["displacement_std_um"][row]), shape=shape,  # type: ignore[arg-type]
            ))
        return refs

    def _row_of(self, key: str) -> int:
        if self._rows is None:
            self._rows = {ref.key: ref.row for ref in reversed(self.sequences())}
        try:
            return self._rows[key]
        except KeyError:
            raise KeyError(f"{self.path}: no complete sequence {key!r}") from None

    # -- one sequence -----------------------------------------------------------------------------
    def _read_sequence_arrays(self, row: int, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray | None]]:
        return read_sequence_row(self._fh, self.path, row, key)

    def _verify(self, meta: dict[str, Any], arrays: dict[str, np.ndarray | None], key: str) -> None:
        verify_sequence_row(self.path, self.info, meta, arrays, key, algorithm=self.checksum)

    def read_sequence(self, key: str, *, verify: bool = True) -> SequenceRecord:
        """The complete sequence ``key`` with all its data, checksum verified unless ``verify=False``."""
        row = self._row_of(key)
        meta, arrays = self._read_sequence_arrays(row, key)
        if verify:
            self._verify(meta, arrays, key)
        label_e = _optional(float(meta["label_e_kpa"]))
        return SequenceRecord(
            key=key, position_index=int(meta["position_index"]), push_index=int(meta["push_index"]),
            push_lateral_mm=float(meta["push_lateral_mm"]), probe_pose=np.asarray(meta["probe_pose"]),
            displacement_um=arrays["displacement_um"], contact_force_n=arrays["contact_force_n"],  # type: ignore[arg-type]
            contact_force_time_s=arrays["contact_force_time_s"],  # type: ignore[arg-type]
            acquired_at=_text(meta["acquired_at"]),
            qc=QcResult(passed=bool(meta["qc_passed"]), reason=_text(meta["qc_reason"]),
                        figures=json.loads(_text(meta["qc_figures_json"]) or "{}")),
            label=None if label_e is None else Label(
                e_kpa=label_e, e_kpa_std=float(meta["label_e_kpa_std"]),
                calibration_id=_text(meta["label_calibration_id"])),
            iq=arrays["iq"], attempt=int(meta["attempt"]), failed=bool(meta["failed"]),
            failure_reason=_text(meta["failure_reason"]),
        )

    def read_status(self, key: str) -> SequenceStatus:
        """What a live view shows of the complete sequence ``key``: its QC and contact force, without its
        displacement (unverified: cheap enough to poll)."""
        row = self._row_of(key)
        seq = self._fh[SEQUENCES]
        try:
            meta = {name: seq[name][row] for name in ("qc_passed", "qc_reason", "failed", "attempt", "acquired_at", "probe_pose",
                                                      "force_start", "force_count")}
            start, count = int(meta["force_start"]), int(meta["force_count"])
            force_n = np.asarray(self._fh[CONTACT_FORCE]["force_n"][start:start + count], dtype=np.float64)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise CorruptSessionError(self.path, f"cannot read the sequence's status ({exc})", key=key) from None
        return SequenceStatus(qc_passed=bool(meta["qc_passed"]), qc_reason=_text(meta["qc_reason"]), failed=bool(meta["failed"]),
                              attempt=int(meta["attempt"]), acquired_at=_text(meta["acquired_at"]),
                              probe_pose=np.asarray(meta["probe_pose"], dtype=np.float64), contact_force_n=force_n)

    def verify_sequence(self, key: str) -> None:
        """Raise ``CorruptSessionError`` naming ``key`` unless its data match its checksum."""
        row = self._row_of(key)
        self._verify(*self._read_sequence_arrays(row, key), key)

    def read_displacement(self, key: str, *, verify: bool = True) -> np.ndarray:
        """Displacement of ``key``, shape ``(frames, depth, lateral)``, float32, micrometres."""
        record = self.read_sequence(key, verify=verify)
        if record.displacement_um is None:
            raise SessionFileError(self.path, "recorded as failed without displacement data", key=key)
        return record.displacement_um

    def read_window(self, row: int, depth: slice, lateral: slice) -> np.ndarray:
        """Unverified read of a spatial window of row ``row``: shape ``(frames, depth, lateral)``."""
        window: np.ndarray = self._fh[SEQUENCES]["displacement"][row, :, depth, lateral]
        return window

    # -- indentation and calibration --------------------------------------------------------------
    def indentation_runs(self, *, verify: bool = True) -> list[IndentationRecord]:
        """Every complete indentation run with its 200 Hz logs, checksums verified."""
        t = self._table(INDENTATION, INDENTATION_COLUMNS)
        samples = self._fh[INDENTATION_SAMPLES]
        runs = []
        for row in np.flatnonzero(t["complete"]):
            meta = {name: t[name][row] for name in t}
            start, count = int(meta["sample_start"]), int(meta["sample_count"])
            label = f"indentation run {row}"
            try:
                arrays = [samples[name][start:start + count] for name in ("time_s", "force_n", "plate_z_mm")]
            except (OSError, RuntimeError, ValueError) as exc:
                raise CorruptSessionError(self.path, f"cannot read the logs ({exc})", key=label) from None
            if verify and digest(meta, INDENTATION_META_FIELDS, arrays, algorithm=self.checksum) != _text(meta["checksum"]):
                raise CorruptSessionError(self.path, "checksum mismatch", key=label)
            conc = _optional(float(meta["concentration_pct"]))
            runs.append(IndentationRecord(
                cylinder_index=int(meta["cylinder_index"]), batch_id=_text(meta["batch_id"]),
                time_s=arrays[0], force_n=arrays[1], plate_z_mm=arrays[2],
                contact_index=int(meta["contact_index"]), stop_reason=_text(meta["stop_reason"]),
                concentration_pct=conc, started_at=_text(meta["started_at"]),
                extra=json.loads(_text(meta["extra_json"]) or "{}"),
            ))
        return runs

    def calibration_fits(self, *, verify: bool = True) -> list[CalibrationFit]:
        """Every complete calibration fit, in the order written, checksums verified unless ``verify=False``."""
        t = self._table(CALIBRATION, CALIBRATION_COLUMNS)
        fits = []
        for row in np.flatnonzero(t["complete"]):
            stored = {name: t[name][row] for name in t}
            if verify and digest(stored, CALIBRATION_META_FIELDS, [], algorithm=self.checksum) != _text(stored["checksum"]):
                raise CorruptSessionError(self.path, "checksum mismatch", key=f"calibration fit {row}")
            try:
                fits.append(CalibrationFit(
                    calibration_id=_text(t["calibration_id"][row]), batch_id=_text(t["batch_id"][row]),
                    concentration_pct=_optional(float(t["concentration_pct"][row])),
                    e_kpa=float(t["e_kpa"][row]), ci95_kpa=(float(t["ci95_kpa"][row][0]), float(t["ci95_kpa"][row][1])),
                    cylinders=int(t["cylinders"][row]), sample_sd_kpa=float(t["sample_sd_kpa"][row]),
                    n_points=int(t["n_points"][row]), r2=float(t["r2"][row]),
                    strain_min=float(t["strain_min"][row]), strain_max=float(t["strain_max"][row]),
                    fitted_at=_text(t["fitted_at"][row]), extra=json.loads(_text(t["extra_json"][row]) or "{}"),
                ))
            except (ValidationError, ValueError) as exc:
                raise CorruptSessionError(self.path, f"calibration fit is invalid ({exc})",
                                          key=f"calibration fit {row}") from None
        return fits


def read_sequence_row(fh: h5py.File, path: Path, row: int, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray | None]]:
    """The stored metadata of sequence row ``row`` (one value per column) and its arrays, unverified."""
    seq = fh[SEQUENCES]
    try:
        meta = {col.name: seq[col.name][row] for col in SEQUENCE_COLUMNS}
        start, count = int(meta["force_start"]), int(meta["force_count"])
        force = fh[CONTACT_FORCE]
        arrays: dict[str, np.ndarray | None] = {
            "displacement_um": seq["displacement"][row] if meta["has_displacement"] else None,
            "iq": seq["iq"][row] if meta["has_iq"] else None,
            "contact_force_time_s": force["time_s"][start:start + count],
            "contact_force_n": force["force_n"][start:start + count],
        }
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise CorruptSessionError(path, f"cannot read the data ({exc})", key=key) from None
    if arrays["contact_force_n"].shape[0] != count:  # type: ignore[union-attr]
        raise CorruptSessionError(path, "contact-force trace is shorter than recorded", key=key)
    return meta, arrays


def sequence_digest(info: SessionInfo, meta: dict[str, Any], arrays: dict[str, np.ndarray | None], *,
                    algorithm: ChecksumAlgorithm) -> str:
    """The checksum of a sequence row of session ``info`` (``datasets.checksums``)."""
    return digest({**meta, "session": info.identity()}, SEQUENCE_META_FIELDS,
                  [arrays["displacement_um"], arrays["iq"], arrays["contact_force_time_s"], arrays["contact_force_n"]],
                  algorithm=algorithm)


def verify_sequence_row(path: Path, info: SessionInfo, meta: dict[str, Any], arrays: dict[str, np.ndarray | None],
                        key: str, *, algorithm: ChecksumAlgorithm) -> None:
    """Raise ``CorruptSessionError`` naming ``key`` unless the row's stored checksum matches its values."""
    expected = _text(meta["checksum"])
    actual = sequence_digest(info, meta, arrays, algorithm=algorithm)
    if actual != expected:
        raise CorruptSessionError(path, f"checksum mismatch (stored {expected}, data give {actual})", key=key)


def read_displacement(ref: SequenceRef, *, verify: bool = True) -> np.ndarray:
    """Displacement of the sequence ``ref`` points to, ``(frames, depth, lateral)`` float32 um."""
    with SessionReader(ref.path) as reader:
        return reader.read_displacement(ref.key, verify=verify)
