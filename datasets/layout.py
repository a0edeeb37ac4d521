"""The on-disk layout of a session file (schema version 3) and the function that creates it.

One HDF5 file per session. Every group and dataset is created when the file is created, because a
SWMR writer cannot create objects once ``swmr_mode`` is on; sequences, indentation runs and
calibration fits are rows along the first axis of resizable datasets ("tables"), ragged traces live
in concatenated sample datasets addressed by ``*_start``/``*_count`` columns, and a row counts only
once its ``complete`` marker is 1.

::

    /                                   NXroot   shearlab_schema, schema_version, software_version
    /entry                              NXentry  session JSON, kind, ids, rig, sequence, probe, plan
    /entry/sequences                    NXcollection, one row per sequence
        displacement (rows, frames, depth, lateral) float32 um, chunk (1, frames, ~32, ~32)
        iq           (rows, frames, depth, lateral) complex64 (only when the session stores IQ)
        frame_times_s, depth_m, lateral_m   the image grid (axes)
        key, position_index, push_index, ..., checksum, complete   one value per row
    /entry/sequences/contact_force      NXlog: time_s, force_n (concatenated over sequences)
    /entry/indentation                  NXcollection, one row per run
    /entry/indentation/samples          NXlog: time_s, force_n, plate_z_mm at 200 Hz (concatenated)
    /entry/calibration                  NXcollection, one row per calibration fit

Chunking: a training window reads all frames of a w x w tile. Chunks are 1 x frames x ~32 x ~32 px,
with tile sides that divide the grid where possible (25 x 30 px on the paper's 250 x 600 grid:
103 KiB at 35 frames), so a 65 px window reads at most 4 x 4 chunks and a 5 px window 1-4.
Displacement and IQ are not compressed: they are noise-dominated float data, and
``benchmarks/bench_datasets.py`` measured gzip+shuffle at 13 % saving for ~40x the write time (lzf:
6 %). The text columns, mostly padding, are gzip-compressed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import h5py
import numpy as np

from shearlab import __version__
from shearlab.datasets.records import SessionInfo

SCHEMA_NAME = "shearlab-session"
# 3: sequence checksums cover labels, normalisation statistics and the session's identity; calibration
# fits have a checksum (``datasets.checksums``). 4: the checksums are BLAKE3 instead of SHA-256.
SCHEMA_VERSION = 4
# The oldest schema this shearlab reads and resumes: its checksums cover what schema 4's do.
OLDEST_READABLE_SCHEMA = 3
# A SWMR writer needs the 1.10 file format; keeping 1.10 as the lower bound (not "latest") leaves the
# files readable by HDF5 1.10+ tools (MATLAB/USTB, h5py builds against older libraries).
LIBVER = ("v110", "latest")
TILE_PX = 32
# Table chunks stay small: every append rewrites (and for text, recompresses) the chunk holding its
# row, so a 1 MiB chunk of JSON strings would cost ~1 MiB of deflate per sequence.
TABLE_CHUNK_BYTES = 16 * 1024
MAX_ROWS_PER_CHUNK = 1024
SAMPLES_PER_CHUNK = 8192
# Fixed-length byte strings: SWMR cannot safely grow variable-length data, and fixed lengths make a
# row's size known before it is written.
KEY_BYTES = 64
TIME_BYTES = 40
REASON_BYTES = 256
JSON_BYTES = 4096

ENTRY = "entry"
SEQUENCES = "entry/sequences"
CONTACT_FORCE = "entry/sequences/contact_force"
INDENTATION = "entry/indentation"
INDENTATION_SAMPLES = "entry/indentation/samples"
CALIBRATION = "entry/calibration"


@dataclass(frozen=True)
class Column:
    """One per-row dataset of a table: dtype, trailing shape, units and meaning."""

    name: str
    dtype: str
    units: str = ""
    doc: str = ""
    tail: tuple[int, ...] = ()


SEQUENCE_COLUMNS: tuple[Column, ...] = (
    Column("key", f"S{KEY_BYTES}", doc="sequence key, unique within the session"),
    Column("position_index", "i4", doc="probe position, 0-based"),
    Column("push_index", "i2", doc="push, 1-based"),
    Column("push_lateral_mm", "f8", "mm", "push centre from the probe centre"),
    Column("probe_pose", "f8", "m,m,m,rad,rad,rad", "TCP pose in the robot base frame", (6,)),
    Column("acquired_at", f"S{TIME_BYTES}", "ISO 8601", "time the push was fired"),
    Column("attempt", "i2", doc="acquisition attempt that produced this record, 1-based"),
    Column("failed", "u1", doc="1: still failed after its re-acquisition attempts"),
    Column("failure_reason", f"S{REASON_BYTES}"),
    Column("qc_passed", "u1", doc="data-quality verdict"),
    Column("qc_reason", f"S{REASON_BYTES}"),
    Column("qc_figures_json", f"S{JSON_BYTES}", doc="figures the QC verdict was based on, JSON"),
    Column("label_e_kpa", "f8", "kPa", "Young's modulus label, NaN when unlabelled"),
    Column("label_e_kpa_std", "f8", "kPa", "uncertainty (1 sigma) of the label"),
    Column("label_calibration_id", f"S{KEY_BYTES}", doc="calibration run that produced the label"),
    Column("force_start", "i8", doc="first sample of this sequence in contact_force/*"),
    Column("force_count", "i8", doc="number of contact-force samples"),
    Column("has_displacement", "u1"),
    Column("has_iq", "u1"),
    Column("displacement_mean_um", "f8", "um", "mean over the whole volume (sequence normalisation)"),
    Column("displacement_std_um", "f8", "um", "std over the whole volume (sequence normalisation)"),
    Column("checksum", "S64", doc="BLAKE3 (schema 3: SHA-256) of the acquired data and metadata, hex"),
    Column("complete", "u1", doc="completion marker, written last after the row's data were flushed"),
)

INDENTATION_COLUMNS: tuple[Column, ...] = (
    Column("cylinder_index", "i4"),
    Column("batch_id", f"S{KEY_BYTES}"),
    Column("concentration_pct", "f8", "%", "gelatin : water weight ratio, NaN if unknown"),
    Column("started_at", f"S{TIME_BYTES}", "ISO 8601"),
    Column("contact_index", "i8", doc="sample at which the plate touched the cylinder, -1 if never"),
    Column("stop_reason", f"S{REASON_BYTES}"),
    Column("extra_json", f"S{JSON_BYTES}"),
    Column("sample_start", "i8", doc="first sample of this run in samples/*"),
    Column("sample_count", "i8"),
    Column("checksum", "S64", doc="BLAKE3 (schema 3: SHA-256) of the run, hex"),
    Column("complete", "u1"),
)

CALIBRATION_COLUMNS: tuple[Column, ...] = (
    Column("calibration_id", f"S{KEY_BYTES}"),
    Column("batch_id", f"S{KEY_BYTES}"),
    Column("concentration_pct", "f8", "%"),
    Column("e_kpa", "f8", "kPa", "Young's modulus from the regression"),
    Column("ci95_kpa", "f8", "kPa", "95 % confidence interval (low, high) of the batch modulus", (2,)),
    Column("cylinders", "i8", "1", "cylinders whose spread gives the interval"),
    Column("sample_sd_kpa", "f8", "kPa", "standard deviation of another sample of the batch about e_kpa"),
    Column("n_points", "i8"),
    Column("r2", "f8"),
    Column("strain_min", "f8", "1", "lower end of the fitted strain range"),
    Column("strain_max", "f8", "1", "upper end of the fitted strain range"),
    Column("fitted_at", f"S{TIME_BYTES}", "ISO 8601"),
    Column("extra_json", f"S{JSON_BYTES}"),
    Column("checksum", "S64", doc="BLAKE3 (schema 3: SHA-256) of the fit, hex"),
    Column("complete", "u1"),
)


def software_version() -> str:
    """The shearlab version that writes the file."""
    return __version__


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    group = parent.create_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def _table(group: h5py.Group, columns: tuple[Column, ...]) -> None:
    for col in columns:
        is_text = col.dtype.startswith("S")
        fill = np.nan if col.dtype.startswith("f") else 0
        row_bytes = np.dtype(col.dtype).itemsize * int(np.prod(col.tail, dtype=int))
        dset = group.create_dataset(
            col.name, shape=(0, *col.tail), maxshape=(None, *col.tail), dtype=col.dtype,
            chunks=(int(np.clip(TABLE_CHUNK_BYTES // row_bytes, 1, MAX_ROWS_PER_CHUNK)), *col.tail),
            fillvalue=b"" if is_text else fill, compression="gzip" if is_text else None,
        )
        if col.units:
            dset.attrs["units"] = col.units
        if col.doc:
            dset.attrs["long_name"] = col.doc


def _samples(group: h5py.Group, spec: dict[str, tuple[str, str]]) -> None:
    for name, (dtype, units) in spec.items():
        dset = group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                                    chunks=(SAMPLES_PER_CHUNK,))
        dset.attrs["units"] = units


def _tile(n: int) -> int:
    """Tile side along an axis of ``n`` pixels: a divisor of ``n`` near ``TILE_PX`` if there is one.

    Edge chunks are stored whole, so a tile that does not divide the axis wastes disk (32 px tiles on
    250 x 600 would store 256 x 608, +3.8 %).
    """
    if n <= TILE_PX:
        return n
    divisors = [d for d in range(TILE_PX * 3 // 4, TILE_PX * 5 // 4 + 1) if n % d == 0]
    return min(divisors, key=lambda d: abs(d - TILE_PX)) if divisors else TILE_PX


def volume_chunks(frames: int, depth: int, lateral: int) -> tuple[int, int, int, int]:
    """Chunk shape of the per-row volumes: one row, all frames, a spatial tile (~25-40 px)."""
    return (1, frames, _tile(depth), _tile(lateral))


def create_layout(fh: h5py.File, info: SessionInfo) -> None:
    """Create every group and dataset of an empty session in ``fh`` (opened with ``LIBVER``)."""
    fh.attrs["NX_class"] = "NXroot"
    fh.attrs["shearlab_schema"] = SCHEMA_NAME
    fh.attrs["schema_version"] = SCHEMA_VERSION
    fh.attrs["software_version"] = software_version()
    fh.attrs["created_at"] = utc_now_iso()
    fh.attrs["default"] = ENTRY

    entry = _group(fh, ENTRY, "NXentry")
    entry.attrs["session_json"] = info.model_dump_json()
    entry.attrs["kind"] = info.kind
    entry.attrs["session_id"] = info.session_id
    entry.attrs["phantom"] = info.phantom
    entry.attrs["batch_id"] = info.batch_id
    entry.attrs["concentration_pct"] = np.nan if info.concentration_pct is None else info.concentration_pct
    entry.attrs["rig_name"] = info.rig_name
    instrument = _group(entry, "instrument", "NXinstrument")
    probe = _group(instrument, "probe", "NXcollection")
    for name, value in info.sequence.probe.model_dump().items():
        probe.attrs[name] = value
    probe.attrs["units_json"] = '{"pitch_mm": "mm", "centre_frequency_mhz": "MHz"}'
    instrument.attrs["sequence_json"] = info.sequence.model_dump_json()
    instrument.attrs["rig_json"] = json.dumps(info.rig)

    grid = info.sequence.grid
    frames, depth, lateral = grid.shape
    seq = _group(fh, SEQUENCES, "NXcollection")
    seq.attrs["axes_json"] = '["row", "frame", "depth", "lateral"]'
    _table(seq, SEQUENCE_COLUMNS)
    volume = seq.create_dataset(
        "displacement", shape=(0, frames, depth, lateral), maxshape=(None, frames, depth, lateral),
        dtype="f4", chunks=volume_chunks(frames, depth, lateral), fillvalue=np.nan,
    )
    volume.attrs["units"] = "um"
    volume.attrs["long_name"] = "axial displacement, positive away from the probe (Loupas)"
    if info.store_iq:
        iq = seq.create_dataset(
            "iq", shape=(0, frames, depth, lateral), maxshape=(None, frames, depth, lateral),
            dtype="c8", chunks=volume_chunks(frames, depth, lateral),
        )
        iq.attrs["units"] = "a.u."
        iq.attrs["long_name"] = "beamformed IQ frames at baseband"
    for name, values in (("frame_times_s", grid.frame_times_s), ("depth_m", grid.depth_m),
                         ("lateral_m", grid.lateral_m)):
        axis = seq.create_dataset(name, data=values.astype("f8"))
        axis.attrs["units"] = name.rsplit("_", 1)[1]
    force = _group(fh, CONTACT_FORCE, "NXlog")
    _samples(force, {"time_s": ("f8", "s"), "force_n": ("f4", "N")})

    _table(_group(fh, INDENTATION, "NXcollection"), INDENTATION_COLUMNS)
    _samples(_group(fh, INDENTATION_SAMPLES, "NXlog"),
             {"time_s": ("f8", "s"), "force_n": ("f4", "N"), "plate_z_mm": ("f8", "mm")})
    cal = _group(fh, CALIBRATION, "NXcollection")
    _table(cal, CALIBRATION_COLUMNS)
