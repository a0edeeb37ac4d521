"""Crash-safe, resumable writing of a session file, one sequence (or indentation run) at a time.

Protocol of one append: validate everything (no I/O), choose a row (the half-written row a crash left
behind, or a new one), grow every column, write the arrays and metadata with the checksum, flush and
fsync, then set ``complete`` = 1, flush and fsync. The volume's mean and std and the checksum (which
covers them) are computed on a helper thread while the arrays are written (BLAKE3 and numpy release the
GIL): on a 20 MiB sequence they cost less than writing it. With ``fsync``, a sequence's fsync and then
its marker run on a commit thread while the caller acquires and writes the next sequence (one commit in
flight; the next append, any other write, ``sync`` and ``close`` wait for it, and a commit that failed
stops the writer there); the marker reaches the disk with the next sequence's fsync, or with ``sync``
and ``close``. ``append_sequence`` returns once the row is written and flushed; a crash before its
marker is durable leaves the row unmarked, to be redone on resume like any half-written row. A
reader — live or after a crash — sees a row only once its marker is set, and then its checksum holds.
The grown extents of different columns may reach the disk in any order, so a row exists only where
every column has it (``SessionReader``); a marker can only stand where the fsync before it made the
whole row durable.

The file is created under a temporary name with its whole layout and renamed into place, so the final
name never holds a half-made file; it is then re-opened in SWMR mode. Re-opening an existing file
resumes it: the "open for writing" flags a killed writer left are cleared (``superblock``), complete
rows are kept, and the next append overwrites the half-written row.

A full disk (``disk_space``): each append first checks that a sequence fits (``DiskFullError``, nothing
written), and the writer holds a reserve of allocated space beside the file while it is open. A write
that fails anyway gives the reserve back so that HDF5 can flush and close, stops the writer, and raises
``SessionWriteError``; the session resumes once space is freed.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from pydantic import ValidationError

from shearlab.datasets.checksums import CALIBRATION_META_FIELDS, INDENTATION_META_FIELDS, checksum_algorithm, digest
from shearlab.datasets.disk_space import MARGIN_BYTES, SpaceReserve, ensure_free
from shearlab.datasets.errors import SessionConflictError, SessionFileError, SessionWriteError
from shearlab.datasets.layout import (
    CALIBRATION,
    CALIBRATION_COLUMNS,
    CONTACT_FORCE,
    INDENTATION,
    INDENTATION_COLUMNS,
    INDENTATION_SAMPLES,
    JSON_BYTES,
    KEY_BYTES,
    LIBVER,
    REASON_BYTES,
    SEQUENCE_COLUMNS,
    SEQUENCES,
    TIME_BYTES,
    Column,
    create_layout,
    utc_now_iso,
)
from shearlab.datasets.reader import SessionReader, read_sequence_row, sequence_digest, verify_sequence_row
from shearlab.datasets.records import (
    CalibrationFit,
    IndentationRecord,
    Label,
    SequenceRecord,
    SessionInfo,
)
from shearlab.datasets.superblock import clear_write_flags
from shearlab.protocols.signal.amplitude import displacement_mean_std_um


def _encode(value: str, limit: int, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > limit:
        raise ValueError(f"{what} is {len(raw)} bytes; at most {limit} fit in the file")
    return raw


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sequence_bytes(info: SessionInfo) -> int:
    """Bytes one sequence of session ``info`` takes on disk: its displacement (and IQ) volume; a calibration
    session's rows are logs of a few hundred kB."""
    if info.kind == "calibration":
        return 0
    frames, depth, lateral = info.sequence.grid.shape
    return frames * depth * lateral * (4 + (8 if info.store_iq else 0))


def _os_reason(exc: BaseException) -> str:
    """``No space left on device`` from h5py's long driver message, or the exception's own text."""
    text = str(exc)
    if "error message = '" in text:
        return text.split("error message = '", 1)[1].split("'", 1)[0]
    return getattr(exc, "strerror", None) or text.splitlines()[0][:160]


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _row_key(value: Any) -> bytes | int:
    return bytes(value) if isinstance(value, bytes | np.bytes_) else int(value)


def _open_swmr_write(path: Path) -> h5py.File:
    """Open ``path`` for writing with SWMR on from the first moment.

    Opening read-write and then setting ``swmr_mode`` leaves a window in which the file is flagged
    "open for writing" without SWMR; a writer killed in it would leave a file no reader can open.
    Exclusivity comes from our lock file: HDF5's own lock would also shut the writer out while a
    reader (a live ``shearlab dataset info``) has the file open, which SWMR is meant to allow.
    """
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, False)
    # No raw-data chunk cache: a row's volume is written once and whole, so a cache would only keep its
    # last chunks for the flush to write (3 ms of a 20 MiB row's flush); relabelling reads rows back whole.
    fapl.set_cache(0, 521, 0, 1.0)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl=fapl)
    return h5py.File(fid)


def _acquire_lock(path: Path) -> int:
    """Hold an exclusive lock on ``<path>.lock`` for the writer's lifetime.

    HDF5 drops its own file lock in SWMR mode, and resuming clears the "open for writing" flags, so
    without this a second writer could take over a file that a live writer is still appending to.
    The kernel releases the lock when the holder dies, which is exactly when resuming is safe.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SessionConflictError(path, "another writer has this session open") from None
    return fd



@dataclass(frozen=True)
class _SequenceArrays:
    """The arrays of one validated sequence record, in their stored dtypes."""

    displacement: np.ndarray | None
    iq: np.ndarray | None
    time_s: np.ndarray
    force_n: np.ndarray

class _Table:
    """Row bookkeeping of one table: which rows are complete, which can be reused, where samples end."""

    def __init__(self, group: h5py.Group, columns: tuple[Column, ...], samples: h5py.Group | None,
                 start_col: str | None, count_col: str | None, key_col: str) -> None:
        self.group, self.columns, self.samples = group, columns, samples
        # h5py looks names up on every access; an append touches ~25 datasets, so keep the handles.
        self.datasets = {c.name: group[c.name] for c in columns}
        self.start_col, self.count_col = start_col, count_col
        complete = group["complete"][:]
        self.n_rows = int(complete.shape[0])
        # Rows past the shortest column were never flushed whole (see SessionReader._table).
        whole = min(d.shape[0] for d in self.datasets.values())
        complete[whole:] = 0
        self.free_rows = [int(r) for r in np.flatnonzero(complete == 0)]
        done = np.flatnonzero(complete)
        keys = group[key_col][:self.n_rows]
        self.done: dict[bytes | int, int] = {_row_key(keys[r]): int(r) for r in done}
        self.samples_end = 0
        if start_col and done.size:
            ends = group[start_col][:self.n_rows][done] + group[count_col][:self.n_rows][done]
            self.samples_end = int(ends.max())

    def next_row(self) -> int:
        return self.free_rows[0] if self.free_rows else self.n_rows

    def grow(self, row: int, volumes: Iterable[h5py.Dataset] = ()) -> None:
        """Make room for ``row`` in every column and in ``volumes``."""
        for dset in [*volumes, *(d for name, d in self.datasets.items() if name != "complete")]:
            if dset.shape[0] <= row:
                dset.resize(row + 1, axis=0)
        marker = self.datasets["complete"]
        if marker.shape[0] <= row:
            marker.resize(row + 1, axis=0)

    def write_samples(self, arrays: Mapping[str, np.ndarray]) -> tuple[int, int]:
        assert self.samples is not None
        start = self.samples_end
        count = next(iter(arrays.values())).shape[0]
        for name, values in arrays.items():
            dset = self.samples[name]
            if dset.shape[0] < start + count:
                dset.resize(start + count, axis=0)
            if count:
                dset[start:start + count] = values
        return start, count

    def write_row(self, row: int, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            self.datasets[name][row] = value

    def mark_complete(self, row: int, key: bytes | int, sample_end: int | None) -> None:
        self.datasets["complete"][row] = 1
        self.reserve(row, key, sample_end)

    def reserve(self, row: int, key: bytes | int, sample_end: int | None) -> None:
        """Count ``row`` as taken by ``key`` here (its marker on disk may follow later)."""
        if row in self.free_rows:
            self.free_rows.remove(row)
        self.n_rows = max(self.n_rows, row + 1)
        self.done[key] = row
        if sample_end is not None:
            self.samples_end = max(self.samples_end, sample_end)


class SessionWriter:
    """Appends sequences, indentation runs and calibration fits to one session file.

    Open with ``SessionWriter.open``; use as a context manager or call ``close``. Not thread-safe:
    one writer per file, one append at a time (its own commit thread aside).
    """

    def __init__(self, path: Path, fh: h5py.File, info: SessionInfo, *, fsync: bool) -> None:
        self.path = path
        self.info = info
        self._fh = fh
        self._fsync = fsync
        # A resumed file keeps the hash its rows were written with.
        self._checksum = checksum_algorithm(int(fh.attrs["schema_version"]))
        self._lock: int | None = None
        self._reserve: SpaceReserve | None = None
        self._failed: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-writer")
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-commit")
        self._committing: tuple[Future[None], int, bytes] | None = None  # the commit, its row and key
        # The commit thread's marker and flush may land between an append's writes: each h5py call is
        # atomic (h5py's global lock), a row is invisible until its marker, and a marker follows its own
        # row's fsync, so no lock of ours orders them.
        self._frames, self._depth, self._lateral = info.sequence.grid.shape
        self._seq = _Table(fh[SEQUENCES], SEQUENCE_COLUMNS, fh[CONTACT_FORCE], "force_start",
                           "force_count", "key")
        self._runs = _Table(fh[INDENTATION], INDENTATION_COLUMNS, fh[INDENTATION_SAMPLES],
                            "sample_start", "sample_count", "cylinder_index")
        self._fits = _Table(fh[CALIBRATION], CALIBRATION_COLUMNS, None, None, None, "calibration_id")

    @classmethod
    def open(cls, path: Path | str, *, session: SessionInfo, resume: bool = True,
             fsync: bool = True) -> SessionWriter:
        """Create the session file at ``path``, or resume it if it exists and ``resume`` is set.

        Resuming checks that the file belongs to ``session`` (same kind, ids, phantom, batch,
        concentration, sequence and IQ setting) and raises ``SessionConflictError`` otherwise.
        ``fsync=False`` skips the per-append fsync (tests, benchmarks); a process crash still loses
        nothing, a power cut may lose the last appends.
        """
        path = Path(path)
        lock = _acquire_lock(path)
        try:
            reserve = SpaceReserve(path.with_name(path.name + ".reserve"), sequence_bytes(session) + MARGIN_BYTES)
        except Exception:
            os.close(lock)
            raise
        try:
            fh = cls._open_file(path, session, resume=resume, fsync=fsync)
        except Exception:
            reserve.release()
            os.close(lock)
            raise
        try:
            # The stored description wins on resume: it says how the rows already there were made.
            info = SessionInfo.model_validate_json(fh["entry"].attrs["session_json"])
            writer = cls(path, fh, info, fsync=fsync)
        except Exception:
            fh.close()
            reserve.release()
            os.close(lock)
            raise
        writer._lock, writer._reserve = lock, reserve
        return writer

    @staticmethod
    def _open_file(path: Path, session: SessionInfo, *, resume: bool, fsync: bool) -> h5py.File:
        if path.exists():
            if not resume:
                raise SessionConflictError(path, "file exists; resume it or choose another name")
            with SessionReader(path) as reader:
                stored = reader.info
            if stored.identity() != session.identity():
                raise SessionConflictError(
                    path, f"belongs to session {stored.session_id!r} ({stored.kind}, {stored.phantom}); "
                          "its identity differs from the session being resumed")
            try:
                clear_write_flags(path)
            except (ValueError, OSError) as exc:
                raise SessionFileError(path, f"cannot be resumed ({exc})") from None
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".creating")
            with h5py.File(tmp, "w", libver=LIBVER) as fh:
                create_layout(fh, session)
            if fsync:
                with open(tmp, "rb+") as raw:
                    os.fsync(raw.fileno())
            os.replace(tmp, path)
            if fsync:
                _fsync_dir(path.parent)
        return _open_swmr_write(path)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the last sequence's commit, then close; ``SessionWriteError`` if that commit failed."""
        self._pool.shutdown()
        try:
            if self._failed is None:
                self.sync()
        finally:
            self._committer.shutdown()
            self._close_file()

    def _close_file(self) -> None:
        try:
            if self._fh.id.valid:
                try:
                    self._fh.close()
                except (OSError, RuntimeError):
                    # No room to flush: with the reserve given back, the second close has it.
                    self._release_reserve()
                    if self._fh.id.valid:
                        self._fh.close()
        finally:
            self._release_reserve()
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    def _release_reserve(self) -> None:
        if self._reserve is not None:
            self._reserve.release()
            self._reserve = None

    def _commit(self) -> None:
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.id.get_vfd_handle())

    def sync(self) -> None:
        """Wait until every appended sequence is marked complete on disk; ``SessionWriteError`` (and the
        writer stopped) if its commit failed. A campaign calls it before the probe moves to a new position."""
        with self._writing():
            self._settle()
            self._commit()  # the last marker: the next row's fsync would have carried it

    def _settle(self) -> None:
        """Wait until the sequence being committed has its marker on disk; raises what its commit raised,
        with the sequence counted as not complete again."""
        committing, self._committing = self._committing, None
        if committing is None:
            return
        future, row, key = committing
        try:
            future.result()
        except BaseException:
            del self._seq.done[key]
            self._seq.free_rows.insert(0, row)
            raise

    def _durable_then_marked(self, row: int) -> None:
        """On the commit thread: the row to disk (and the previous row's marker with it), then its marker
        to the OS. One fsync per sequence: a marker reaches the disk with the next row's fsync, or with
        ``sync`` and ``close``, and never before its own row's data."""
        os.fsync(self._fh.id.get_vfd_handle())
        self._seq.datasets["complete"][row] = 1
        self._fh.flush()

    def ensure_room(self, n_sequences: int = 1) -> None:
        """``DiskFullError`` naming the folder unless ``n_sequences`` more sequences fit on its disk."""
        ensure_free(self.path.parent, n_sequences * sequence_bytes(self.info),
                    what=f"{n_sequences} sequence{'s' if n_sequences > 1 else ''} of {self.info.session_id}")

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Run one write; a failure of the disk stops the writer, cleanly, with ``SessionWriteError``."""
        if self._failed is not None:
            raise SessionWriteError(self.path, f"writing stopped after a failed write ({self._failed}): close it and rerun to resume")
        try:
            yield
        except (OSError, RuntimeError) as exc:
            self._failed = _os_reason(exc)
            self._release_reserve()
            try:
                self._fh.flush()
            except (OSError, RuntimeError):
                pass  # close() tries again; the completed rows are on disk already
            raise SessionWriteError(self.path, f"cannot write ({self._failed}); the sequences completed before are safe: "
                                               "free space or fix the disk, then rerun to resume") from None

    # -- sequences --------------------------------------------------------------------------------
    def completed_keys(self, *, include_failed: bool = True) -> set[str]:
        """Keys of the complete sequences (those recorded as failed too unless excluded)."""
        done = {k.decode("utf-8"): row for k, row in self._seq.done.items() if isinstance(k, bytes)}
        if include_failed:
            return set(done)
        failed = self._seq.datasets["failed"][:]
        return {k for k, row in done.items() if not failed[row]}

    def _sequence_row(self, record: SequenceRecord) -> tuple[dict[str, Any], _SequenceArrays]:
        """Validate ``record`` and convert it to stored values; no I/O."""
        what = f"sequence {record.key!r}"
        if not record.key:
            raise ValueError("sequence key must not be empty")
        if record.push_index < 1:
            raise ValueError(f"{what}: push_index is 1-based, got {record.push_index}")
        if record.position_index < 0 or record.attempt < 1:
            raise ValueError(f"{what}: position_index must be >= 0 and attempt >= 1")
        pose = np.asarray(record.probe_pose, dtype="f8")
        if pose.shape != (6,):
            raise ValueError(f"{what}: probe_pose must have shape (6,), got {pose.shape}")
        shape = (self._frames, self._depth, self._lateral)
        displacement = None
        if record.displacement_um is not None:
            displacement = np.ascontiguousarray(record.displacement_um, dtype="<f4")
            if displacement.shape != shape:
                raise ValueError(f"{what}: displacement_um must have shape {shape} (frames, depth, lateral), "
                                 f"got {displacement.shape}")
        elif not record.failed:
            raise ValueError(f"{what}: displacement_um is required unless the sequence is recorded as failed")
        iq = None
        if record.iq is not None:
            if not self.info.store_iq:
                raise ValueError(f"{what}: this session does not store IQ (SessionInfo.store_iq is False)")
            iq = np.ascontiguousarray(record.iq, dtype="<c8")
            if iq.shape != shape:
                raise ValueError(f"{what}: iq must have shape {shape}, got {iq.shape}")
        force_t = np.ascontiguousarray(record.contact_force_time_s, dtype="<f8")
        force_n = np.ascontiguousarray(record.contact_force_n, dtype="<f4")
        if force_t.ndim != 1 or force_t.shape != force_n.shape:
            raise ValueError(f"{what}: contact_force_n and contact_force_time_s must be 1-D and equally long")
        figures = json.dumps(dict(record.qc.figures), sort_keys=True)
        label = record.label
        row = {
            "key": _encode(record.key, KEY_BYTES, f"{what}: key"),
            "position_index": int(record.position_index), "push_index": int(record.push_index),
            "push_lateral_mm": float(record.push_lateral_mm), "probe_pose": pose,
            "acquired_at": _encode(record.acquired_at, TIME_BYTES, f"{what}: acquired_at"),
            "attempt": int(record.attempt), "failed": int(bool(record.failed)),
            "failure_reason": _encode(record.failure_reason, REASON_BYTES, f"{what}: failure_reason"),
            "qc_passed": int(bool(record.qc.passed)),
            "qc_reason": _encode(record.qc.reason, REASON_BYTES, f"{what}: qc reason"),
            "qc_figures_json": _encode(figures, JSON_BYTES, f"{what}: qc figures"),
            "label_e_kpa": math.nan if label is None else label.e_kpa,
            "label_e_kpa_std": math.nan if label is None else label.e_kpa_std,
            "label_calibration_id": b"" if label is None else label.calibration_id.encode("utf-8"),
            "has_displacement": int(displacement is not None), "has_iq": int(iq is not None),
        }
        return row, _SequenceArrays(displacement, iq, force_t, force_n)

    def _summarise(self, row: dict[str, Any], arrays: _SequenceArrays) -> Future[dict[str, Any]]:
        """The volume's mean and std and the row's checksum, computing on the helper thread."""
        def summary() -> dict[str, Any]:
            volume = arrays.displacement
            mean, std = (math.nan, math.nan) if volume is None else displacement_mean_std_um(volume)
            stats = {"displacement_mean_um": mean, "displacement_std_um": std}
            checksum = sequence_digest(self.info, {**row, **stats}, {
                "displacement_um": volume, "iq": arrays.iq, "contact_force_time_s": arrays.time_s,
                "contact_force_n": arrays.force_n}, algorithm=self._checksum)
            return {**stats, "checksum": checksum.encode()}
        return self._pool.submit(summary)

    def append_sequence(self, record: SequenceRecord) -> int:
        """Write one sequence and mark it complete; returns its row.

        Raises ``ValueError`` for an invalid record (nothing is written) and
        ``SessionConflictError`` if ``record.key`` is already complete in this session.
        """
        row_values, arrays = self._sequence_row(record)
        if row_values["key"] in self._seq.done:
            raise SessionConflictError(self.path, "already complete in this session", key=record.key)
        self.ensure_room()
        summary = self._summarise(dict(row_values), arrays)
        with self._writing():
            seq = self._fh[SEQUENCES]
            volumes = [seq["displacement"]] + ([seq["iq"]] if "iq" in seq else [])
            row = self._seq.next_row()
            self._seq.grow(row, volumes)
            start, count = self._seq.write_samples({"time_s": arrays.time_s, "force_n": arrays.force_n})
            row_values["force_start"], row_values["force_count"] = start, count
            if arrays.displacement is not None:
                seq["displacement"][row] = arrays.displacement
            if arrays.iq is not None:
                seq["iq"][row] = arrays.iq
            row_values.update(summary.result())
            self._seq.write_row(row, row_values)
            self._fh.flush()
            # The previous sequence's commit ran while this one was written: one commit in flight.
            self._settle()
            if self._fsync:
                self._seq.reserve(row, row_values["key"], start + count)
                self._committing = (self._committer.submit(self._durable_then_marked, row), row, row_values["key"])
            else:
                self._seq.mark_complete(row, row_values["key"], start + count)
                self._commit()
        return row

    def set_label(self, calibration_id: str, e_kpa: float, e_kpa_std: float, *,
                  keys: Iterable[str] | None = None) -> int:
        """Attach a label from calibration ``calibration_id`` to complete, non-failed sequences.

        All of them, or only ``keys``; returns how many were labelled. Sequences appended later keep
        the label they are appended with. Each sequence's data are verified against its checksum first
        (``CorruptSessionError`` otherwise), then its checksum is written anew over the new label.
        """
        self.sync()
        label = Label(e_kpa=e_kpa, e_kpa_std=e_kpa_std, calibration_id=calibration_id)
        wanted = None if keys is None else {k.encode("utf-8") for k in keys}
        if wanted is not None and (missing := wanted - set(self._seq.done)):
            raise KeyError(f"{self.path}: no complete sequence {sorted(m.decode() for m in missing)}")
        failed = self._seq.datasets["failed"][:]
        rows = [row for key, row in self._seq.done.items()
                if (wanted is None or key in wanted) and not failed[row]]
        for row in rows:
            key = _text(self._seq.datasets["key"][row])
            meta, arrays = read_sequence_row(self._fh, self.path, row, key)
            verify_sequence_row(self.path, self.info, meta, arrays, key, algorithm=self._checksum)
            values = {"label_e_kpa": label.e_kpa, "label_e_kpa_std": label.e_kpa_std,
                      "label_calibration_id": label.calibration_id.encode("utf-8")}
            values["checksum"] = sequence_digest(self.info, {**meta, **values}, arrays, algorithm=self._checksum).encode()
            with self._writing():
                self._seq.write_row(row, values)
        with self._writing():
            self._commit()
        return len(rows)

    # -- indentation and calibration --------------------------------------------------------------
    def completed_indentation_runs(self) -> set[int]:
        """Cylinder indices whose indentation run is complete."""
        return {int(k) for k in self._runs.done}

    def append_indentation_run(self, run: IndentationRecord) -> int:
        """Write one indentation run (200 Hz logs) and mark it complete; returns its row."""
        what = f"indentation run of cylinder {run.cylinder_index}"
        time_s = np.ascontiguousarray(run.time_s, dtype="<f8")
        force_n = np.ascontiguousarray(run.force_n, dtype="<f4")
        plate_z = np.ascontiguousarray(run.plate_z_mm, dtype="<f8")
        if time_s.ndim != 1 or not (time_s.shape == force_n.shape == plate_z.shape):
            raise ValueError(f"{what}: time_s, force_n and plate_z_mm must be 1-D and equally long")
        if not -1 <= run.contact_index < max(time_s.shape[0], 1):
            raise ValueError(f"{what}: contact_index {run.contact_index} is outside the log")
        if run.cylinder_index < 0:
            raise ValueError(f"{what}: cylinder_index must be >= 0")
        row_values: dict[str, Any] = {
            "cylinder_index": int(run.cylinder_index),
            "batch_id": _encode(run.batch_id, KEY_BYTES, f"{what}: batch_id"),
            "concentration_pct": math.nan if run.concentration_pct is None else float(run.concentration_pct),
            "started_at": _encode(run.started_at, TIME_BYTES, f"{what}: started_at"),
            "contact_index": int(run.contact_index),
            "stop_reason": _encode(run.stop_reason, REASON_BYTES, f"{what}: stop_reason"),
            "extra_json": _encode(json.dumps(run.extra, sort_keys=True), JSON_BYTES, f"{what}: extra"),
        }
        row_values["checksum"] = digest(row_values, INDENTATION_META_FIELDS, [time_s, force_n, plate_z],
                                        algorithm=self._checksum).encode()
        key = int(run.cylinder_index)
        if key in self._runs.done:
            raise SessionConflictError(self.path, "already complete in this session", key=what)
        ensure_free(self.path.parent, time_s.nbytes + force_n.nbytes + plate_z.nbytes, what=what)
        with self._writing():
            self._settle()
            row = self._runs.next_row()
            self._runs.grow(row)
            start, count = self._runs.write_samples({"time_s": time_s, "force_n": force_n, "plate_z_mm": plate_z})
            row_values["sample_start"], row_values["sample_count"] = start, count
            self._runs.write_row(row, row_values)
            self._commit()
            self._runs.mark_complete(row, key, start + count)
            self._commit()
        return row

    def write_calibration_fit(self, fit: CalibrationFit | Mapping[str, Any]) -> int:
        """Write one calibration fit (a ``CalibrationFit`` or a dict of its fields); returns its row."""
        try:
            model = fit if isinstance(fit, CalibrationFit) else CalibrationFit.model_validate(dict(fit))
        except ValidationError as exc:
            raise ValueError(f"calibration fit is invalid: {exc}") from None
        key = _encode(model.calibration_id, KEY_BYTES, "calibration_id")
        if key in self._fits.done:
            raise SessionConflictError(self.path, "already written", key=f"calibration {model.calibration_id}")
        row_values = {
            "calibration_id": key, "batch_id": _encode(model.batch_id, KEY_BYTES, "batch_id"),
            "concentration_pct": math.nan if model.concentration_pct is None else model.concentration_pct,
            "e_kpa": model.e_kpa, "ci95_kpa": np.asarray(model.ci95_kpa, dtype="f8"),
            "cylinders": model.cylinders, "sample_sd_kpa": model.sample_sd_kpa, "n_points": model.n_points, "r2": model.r2,
            "strain_min": model.strain_min,
            "strain_max": model.strain_max,
            "fitted_at": _encode(model.fitted_at or utc_now_iso(), TIME_BYTES, "fitted_at"),
            "extra_json": _encode(json.dumps(model.extra, sort_keys=True), JSON_BYTES, "extra"),
        }
        row_values["checksum"] = digest(row_values, CALIBRATION_META_FIELDS, [], algorithm=self._checksum).encode()
        with self._writing():
            self._settle()
            row = self._fits.next_row()
            self._fits.grow(row)
            self._fits.write_row(row, row_values)
            self._commit()
            self._fits.mark_complete(row, key, None)
            self._commit()
        return row
