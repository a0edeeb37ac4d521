"""Corrupted, truncated, foreign and newer-schema files give a clear error, never a partial read."""

from __future__ import annotations

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
