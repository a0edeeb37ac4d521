"""Corrupted, truncated, foreign and newer-schema files give a clear error, never a partial read."""

from __future__ import annotations

import struct
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shearlab.datasets import (
    CorruptSessionError,
    NotASessionFileError,
    SchemaVersionError,
    SessionFileError,
    SessionReader,
    check_session,
)
from shearlab.datasets.layout import SEQUENCES
from shearlab.datasets.superblock import lookup3


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotASessionFileError, match="file not found"):
        SessionReader(tmp_path / "nope.h5")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("position 3 looked odd\n")
    with pytest.raises(NotASessionFileError, match="not an HDF5 file"):
        SessionReader(path)


def test_foreign_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as fh:
        fh["data"] = np.arange(10)
    with pytest.raises(NotASessionFileError, match="not a shearlab session"):
        SessionReader(path)


def test_newer_schema_is_refused_with_advice(make_session) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[0], pushes=[1])
    with h5py.File(path, "r+") as fh:
        fh.attrs["schema_version"] = 7
    with pytest.raises(SchemaVersionError, match="schema version 7.*upgrade shearlab"):
        SessionReader(path)


def test_truncated_file(make_session) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[0], pushes=[1, 2])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptSessionError, match="truncated or damaged"):
        SessionReader(path)
    report = check_session(path)
    assert not report.ok and "truncated" in report.problems[0].cause


def test_flipped_data_byte_is_caught_and_named(make_session) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[0], pushes=[1, 2, 3])
    with h5py.File(path, "r") as fh:
        dset = fh[SEQUENCES]["displacement"]
        offset = dset.id.get_chunk_info_by_coord((1, 0, 0, 0)).byte_offset  # a chunk of row 1
    with open(path, "r+b") as raw:
        raw.seek(offset + 1000)
        byte = raw.read(1)
        raw.seek(offset + 1000)
        raw.write(bytes([byte[0] ^ 0xFF]))
    with SessionReader(path) as reader:
        reader.verify_sequence("p000_push1")
        with pytest.raises(CorruptSessionError, match="p000_push2: checksum mismatch"):
            reader.read_displacement("p000_push2")
    report = check_session(path)
    assert [(p.where, p.cause.split(" (")[0]) for p in report.problems] == [("p000_push2", "checksum mismatch")]


def test_missing_dataset_is_named(make_session) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[0], pushes=[1])
    with h5py.File(path, "r+") as fh:
        del fh[SEQUENCES]["checksum"]
    with pytest.raises(CorruptSessionError, match="/entry/sequences/checksum is missing"):
        SessionReader(path)


def test_lookup3_known_answers() -> None:
    # Test vectors published with Bob Jenkins' lookup3.c (driver5).
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=4))
def test_damaged_files_raise_only_session_errors(make_session, tmp_path: Path, cut: float,  # type: ignore[no-untyped-def]
                                                  flips: list[tuple[float, int]]) -> None:
    """Whatever happens to the bytes, readers raise a SessionFileError or read verified data."""
    source = tmp_path / "ok" / "s1.h5"
    if not source.exists():
        source.parent.mkdir(exist_ok=True)
        make_session("s1", positions=[0], pushes=[1, 2], folder=source.parent)
    data = bytearray(source.read_bytes())
    for where, mask in flips:
        index = int(where * (len(data) - 1))
        data[index] ^= mask
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(bytes(data[: max(1, int(cut * len(data)))]) if cut < 1.0 else bytes(data))
    try:
        with SessionReader(damaged) as reader:
            for ref in reader.sequences():
                reader.read_displacement(ref.key)
    except SessionFileError:
        pass
    check_session(damaged)  # never raises: problems are reported


def _flip_bit(value: float, bit: int) -> float:
    (raw,) = struct.unpack("<Q", struct.pack("<d", value))
    (flipped,) = struct.unpack("<d", struct.pack("<Q", raw ^ (1 << bit)))
    return float(flipped)


@pytest.mark.parametrize("column, tamper", [
    ("label_e_kpa", lambda v: _flip_bit(float(v), 48)),  # 54 kPa -> 52 kPa: one bit
    ("label_e_kpa_std", lambda v: _flip_bit(float(v), 50)),
    ("label_calibration_id", lambda v: b"cal-other"),
    ("displacement_mean_um", lambda v: _flip_bit(float(v), 40)),
    ("displacement_std_um", lambda v: _flip_bit(float(v), 40)),
    ("qc_figures_json", lambda v: v.replace(b"2", b"3", 1)),
])
def test_a_changed_label_or_statistic_fails_the_check(make_session, column, tamper) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[0], pushes=[1, 2])
    with h5py.File(path, "r+") as fh:
        dset = fh[SEQUENCES][column]
        before = dset[1]
        dset[1] = tamper(before)
        assert dset[1] != before
    report = check_session(path)
    assert [(p.where, p.cause.split(" (")[0]) for p in report.problems] == [("p000_push2", "checksum mismatch")]


def test_a_changed_calibration_fit_fails_the_check(tmp_path: Path) -> None:
    from shearlab.datasets import SessionWriter
    from shearlab.datasets.records import CalibrationFit, SessionInfo

    path = tmp_path / "cal.h5"
    info = SessionInfo(kind="calibration", session_id="calibration_B1", phantom="cylinders", batch_id="B1", concentration_pct=10.0)
    with SessionWriter.open(path, session=info) as writer:
        writer.write_calibration_fit(CalibrationFit(calibration_id="cal-B1", batch_id="B1", concentration_pct=10.0, e_kpa=54.0,
                                                    ci95_kpa=(53.0, 55.0), cylinders=8, sample_sd_kpa=1.2, n_points=400, r2=0.99))
    assert check_session(path).ok
    with h5py.File(path, "r+") as fh:
        fh["entry/calibration/e_kpa"][0] = _flip_bit(54.0, 46)
    report = check_session(path)
    assert [(p.where, p.cause) for p in report.problems] == [("calibration fit 0", "checksum mismatch")]


def test_relabelling_refuses_a_sequence_whose_data_changed(make_session) -> None:  # type: ignore[no-untyped-def]
    from shearlab.datasets import SessionWriter

    path = make_session("s1", positions=[0], pushes=[1, 2])
    with SessionReader(path) as reader:
        info = reader.info
    with h5py.File(path, "r+") as fh:
        fh[SEQUENCES]["push_lateral_mm"][0] = 1.0
    with SessionWriter.open(path, session=info) as writer, pytest.raises(CorruptSessionError, match="p000_push1: checksum mismatch"):
        writer.set_label("cal-9", 60.0, 1.0)


def test_an_older_schema_and_a_foreign_schema_say_what_they_are(make_session) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[0], pushes=[1])
    with h5py.File(path, "r+") as fh:
        fh.attrs["schema_version"] = 2
    with pytest.raises(SchemaVersionError, match="schema version 2, whose checksums do not cover labels"):
        SessionReader(path)
    with h5py.File(path, "r+") as fh:
        fh.attrs["shearlab_schema"] = "ustb-uff"
    with pytest.raises(NotASessionFileError, match="an HDF5 file of schema 'ustb-uff', not a shearlab session"):
        SessionReader(path)
