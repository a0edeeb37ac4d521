"""Writing, resuming and reading sessions: what an acquisition flow and its users rely on."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from shearlab.datasets import (
    IndentationRecord,
    SessionConflictError,
    SessionReader,
    SessionWriter,
    check_session,
    layout,
    read_displacement,
    sequence_key,
)
from shearlab.datasets.checksums import ChecksumAlgorithm
from shearlab.datasets.errors import SessionWriteError
from shearlab.datasets.layout import SCHEMA_VERSION, SEQUENCES
from shearlab.datasets.reader import read_sequence_row, sequence_digest
from shearlab.datasets.records import SessionInfo
from shearlab.training.synthetic import synthetic_record, synthetic_session_info


def test_round_trip_keeps_every_value(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    record = synthetic_record(info, 3, 2, seed=7)
    with SessionWriter.open(path, session=info) as writer:
        writer.append_sequence(record)
    with SessionReader(path) as reader:
        assert reader.info == info
        back = reader.read_sequence(record.key)
        ref = reader.sequences()[0]
    np.testing.assert_array_equal(back.displacement_um, record.displacement_um)
    np.testing.assert_array_equal(back.probe_pose, record.probe_pose)
    np.testing.assert_array_equal(back.contact_force_time_s, record.contact_force_time_s)
    np.testing.assert_array_equal(back.contact_force_n, record.contact_force_n)
    assert (back.key, back.position_index, back.push_index) == (record.key, 3, 2)
    assert back.push_lateral_mm == record.push_lateral_mm
    assert back.qc == record.qc and back.label == record.label and back.acquired_at == record.acquired_at
    # the label names the calibration run that produced it
    assert ref.label_calibration_id == record.label.calibration_id  # type: ignore[union-attr]
    assert ref.displacement_mean_um == pytest.approx(float(record.displacement_um.mean(dtype="f8")))  # type: ignore[union-attr]


def test_file_is_self_describing(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info) as writer:
        writer.append_sequence(synthetic_record(info, 0, 1))
    with h5py.File(path, "r") as fh:
        assert fh.attrs["NX_class"] == "NXroot" and fh["entry"].attrs["NX_class"] == "NXentry"
        assert fh.attrs["schema_version"] == SCHEMA_VERSION and fh.attrs["software_version"]
        seq = fh[SEQUENCES]
        assert seq["displacement"].attrs["units"] == "um"
        assert seq["label_e_kpa"].attrs["units"] == "kPa"
        assert seq["push_lateral_mm"].attrs["units"] == "mm"
        assert fh["entry/instrument/probe"].attrs["pitch_mm"] == pytest.approx(0.29)
        # one training window of 33 px touches at most 2 x 2 spatial tiles of all frames
        assert seq["displacement"].chunks == (1, 35, 32, 32)


def test_paper_sized_layout_chunks_stay_within_limits(tmp_path: Path) -> None:
    info = SessionInfo(kind="block", session_id="full", phantom="b", batch_id="b1", concentration_pct=10.0)
    with SessionWriter.open(tmp_path / "full.h5", session=info, fsync=False):
        pass
    with h5py.File(tmp_path / "full.h5", "r") as fh:
        dset = fh[SEQUENCES]["displacement"]
        assert dset.shape[1:] == (35, 250, 600)
        chunk_bytes = np.prod(dset.chunks) * 4
        assert 64 * 1024 <= chunk_bytes <= 1024 * 1024  # SPEC §5
        assert 250 % dset.chunks[2] == 0 and 600 % dset.chunks[3] == 0  # no padded edge chunks


def test_resume_keeps_completed_and_refuses_duplicates(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info) as writer:
        for push in (1, 2):
            writer.append_sequence(synthetic_record(info, 0, push))
    with SessionWriter.open(path, session=info, resume=True) as writer:
        assert writer.completed_keys() == {"p000_push1", "p000_push2"}
        with pytest.raises(SessionConflictError, match="p000_push2"):
            writer.append_sequence(synthetic_record(info, 0, 2))
        writer.append_sequence(synthetic_record(info, 0, 3))
    with SessionReader(path) as reader:
        assert [r.key for r in reader.sequences()] == ["p000_push1", "p000_push2", "p000_push3"]


def _stored_digest_matches(path: Path, info: SessionInfo, key: str, algorithm: ChecksumAlgorithm) -> bool:
    with SessionReader(path) as reader:
        row = next(r.row for r in reader.sequences() if r.key == key)
    with h5py.File(path, "r") as fh:
        meta, arrays = read_sequence_row(fh, path, row, key)
    return sequence_digest(info, meta, arrays, algorithm=algorithm) == meta["checksum"].decode()


def test_new_files_carry_blake3_digests(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info) as writer:
        writer.append_sequence(synthetic_record(info, 0, 1))
    assert _stored_digest_matches(path, info, "p000_push1", "blake3")
    assert not _stored_digest_matches(path, info, "p000_push1", "sha256")


def test_a_schema_3_session_still_reads_verifies_and_resumes_with_sha256(
        tmp_path: Path, info: SessionInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.h5"
    with monkeypatch.context() as patch:
        patch.setattr(layout, "SCHEMA_VERSION", 3)  # the file as the shearlab of schema 3 created it
        with SessionWriter.open(path, session=info) as writer:
            writer.append_sequence(synthetic_record(info, 0, 1))
    with SessionWriter.open(path, session=info, resume=True) as writer:
        writer.append_sequence(synthetic_record(info, 0, 2))
    with h5py.File(path, "r") as fh:
        assert fh.attrs["schema_version"] == 3
    for key in ("p000_push1", "p000_push2"):
        assert _stored_digest_matches(path, info, key, "sha256")
    assert check_session(path).ok
    with SessionReader(path) as reader:
        assert reader.read_sequence("p000_push2").push_index == 2
    # A flipped bit in a schema-3 row is still found.
    with h5py.File(path, "r+") as fh:
        fh[SEQUENCES]["displacement"][0, 0, 0, 0] += 1.0
    assert not check_session(path).ok


def test_a_commit_failing_on_the_commit_thread_stops_the_writer_and_keeps_what_was_committed(
        tmp_path: Path, info: SessionInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    # With fsync, a sequence's fsyncs and marker run on the writer's commit thread beside the next append;
    # a disk error there (EIO on fsync) must surface at the writer's next step, not vanish with the thread.
    path = tmp_path / "s.h5"
    real_fsync, commits = os.fsync, []

    def failing_on_the_third_commit(fd: int) -> None:
        if threading.current_thread().name.startswith("session-commit"):
            commits.append(fd)
            if len(commits) > 2:  # one fsync per commit: the third sequence's commit fails
                raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_on_the_third_commit)
    writer = SessionWriter.open(path, session=info)
    for push in (1, 2, 3):
        writer.append_sequence(synthetic_record(info, 0, push))
    with pytest.raises(SessionWriteError, match=f"{path}.*Input/output error"):
        writer.append_sequence(synthetic_record(info, 0, 4))
    assert writer.completed_keys() == {"p000_push1", "p000_push2"}  # the third counts as not written
    with pytest.raises(SessionWriteError, match="writing stopped"):
        writer.append_sequence(synthetic_record(info, 0, 4))
    writer.close()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert check_session(path).ok
    with SessionReader(path) as reader:
        assert [r.key for r in reader.sequences()] == ["p000_push1", "p000_push2"]
    with SessionWriter.open(path, session=info, resume=True) as writer:  # the unmarked third is redone
        assert writer.completed_keys() == {"p000_push1", "p000_push2"}
        for push in (3, 4):
            writer.append_sequence(synthetic_record(info, 0, push))
    with SessionReader(path) as reader:
        assert [r.key for r in reader.sequences()] == [f"p000_push{k}" for k in (1, 2, 3, 4)]


def test_close_waits_for_the_last_commit(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info) as writer:
        writer.append_sequence(synthetic_record(info, 0, 1))
    with SessionReader(path) as reader:  # marked and durable once close returns
        assert [r.key for r in reader.sequences()] == ["p000_push1"]


def test_existing_file_of_another_session_is_not_resumed(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info):
        pass
    other = synthetic_session_info("other", concentration_pct=12.5)
    with pytest.raises(SessionConflictError, match="belongs to session 's-test'"):
        SessionWriter.open(path, session=other)
    with pytest.raises(SessionConflictError, match="exists"):
        SessionWriter.open(path, session=info, resume=False)


def test_second_writer_on_a_live_session_is_refused(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info):
        with pytest.raises(SessionConflictError, match="another writer"):
            SessionWriter.open(path, session=info)


def test_half_written_row_is_hidden_then_redone(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info) as writer:
        writer.append_sequence(synthetic_record(info, 0, 1))
        writer.append_sequence(synthetic_record(info, 0, 2))
    with h5py.File(path, "r+", libver="latest") as fh:  # as if killed before the marker was written
        fh[SEQUENCES]["complete"][1] = 0
    with SessionReader(path) as reader:
        assert [r.key for r in reader.sequences()] == ["p000_push1"]
    redo = synthetic_record(info, 0, 2, seed=99)
    with SessionWriter.open(path, session=info) as writer:
        assert writer.completed_keys() == {"p000_push1"}
        assert writer.append_sequence(redo) == 1  # the half-written row is reused, not duplicated
    with SessionReader(path) as reader:
        assert len(reader.sequences(include_incomplete=True)) == 2
        np.testing.assert_array_equal(reader.read_displacement("p000_push2"), redo.displacement_um)


def test_invalid_records_write_nothing(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    good = synthetic_record(info, 0, 1)
    with SessionWriter.open(path, session=info) as writer:
        for change, match in (
            ({"displacement_um": np.zeros((35, 10, 10), np.float32)}, "shape"),
            ({"push_index": 0}, "1-based"),
            ({"probe_pose": np.zeros(5)}, r"\(6,\)"),
            ({"contact_force_n": np.zeros(3)}, "equally long"),
            ({"displacement_um": None}, "required unless"),
            ({"key": "k" * 65}, "at most 64"),
        ):
            bad = synthetic_record(info, 0, 1)
            for name, value in change.items():
                setattr(bad, name, value)
            with pytest.raises(ValueError, match=match):
                writer.append_sequence(bad)
        assert writer.completed_keys() == set()
        writer.append_sequence(good)
    with SessionReader(path) as reader:
        assert len(reader.sequences(include_incomplete=True)) == 1


def test_failed_sequence_is_recorded_but_not_used(tmp_path: Path, info: SessionInfo) -> None:
    path = tmp_path / "s.h5"
    with SessionWriter.open(path, session=info) as writer:
        writer.append_sequence(synthetic_record(info, 0, 1, failed=True))
        writer.append_sequence(synthetic_record(info, 0, 2))
        assert writer.completed_keys() == {"p000_push1", "p000_push2"}
        assert writer.completed_keys(include_failed=False) == {"p000_push2"}
        assert writer.set_label("cal-7", 55.5, 1.2) == 1  # failed sequences get no label
    with SessionReader(path) as reader:
        failed = reader.read_sequence("p000_push1")
        assert failed.failed and failed.displacement_um is None and failed.attempt == 3
        assert "QC failed" in failed.failure_reason and failed.label is None
        good = reader.sequences()[1]
        assert (good.label_e_kpa, good.label_calibration_id) == (55.5, "cal-7")


def test_iq_is_stored_when_the_session_asks(tmp_path: Path) -> None:
    info = synthetic_session_info("iq", store_iq=True)
    record = synthetic_record(info, 0, 4)
    with SessionWriter.open(tmp_path / "iq.h5", session=info) as writer:
        writer.append_sequence(record)
    with SessionReader(tmp_path / "iq.h5") as reader:
        back = reader.read_sequence(record.key)
    assert back.iq is not None and back.iq.dtype == np.complex64
    np.testing.assert_array_equal(back.iq, record.iq)


def test_indentation_runs_and_calibration_fit(tmp_path: Path) -> None:
    info = synthetic_session_info("cal", kind="calibration")
    rng = np.random.default_rng(3)
    runs = []
    for cylinder in range(3):
        n = 200 + 10 * cylinder  # 200 Hz logs of slightly different lengths
        t = np.arange(n) / 200.0
        runs.append(IndentationRecord(cylinder_index=cylinder, batch_id="b10", time_s=t,
                                      force_n=(0.01 * t + 0.003 * rng.standard_normal(n)).astype(np.float32),
                                      plate_z_mm=-0.01 * t, contact_index=20, stop_reason="force 2 N reached",
                                      concentration_pct=10.0))
    with SessionWriter.open(tmp_path / "cal.h5", session=info) as writer:
        for run in runs[:2]:
            writer.append_indentation_run(run)
    with SessionWriter.open(tmp_path / "cal.h5", session=info) as writer:
        assert writer.completed_indentation_runs() == {0, 1}
        with pytest.raises(SessionConflictError):
            writer.append_indentation_run(runs[1])
        writer.append_indentation_run(runs[2])
        writer.write_calibration_fit({"calibration_id": "cal-b10", "batch_id": "b10", "e_kpa": 54.2,
                                      "ci95_kpa": 1.1, "cylinders": 8, "sample_sd_kpa": 1.4, "n_points": 812,
                                      "r2": 0.995})
    with SessionReader(tmp_path / "cal.h5") as reader:
        back = reader.indentation_runs()
        fits = reader.calibration_fits()
    assert [r.cylinder_index for r in back] == [0, 1, 2]
    for run, got in zip(runs, back, strict=True):
        np.testing.assert_array_equal(got.time_s, run.time_s)
        np.testing.assert_array_equal(got.force_n, run.force_n)
        np.testing.assert_array_equal(got.plate_z_mm, run.plate_z_mm)
    assert len(fits) == 1 and fits[0].calibration_id == "cal-b10" and fits[0].n_points == 812
    # a bare number is the half-width of the 95 % interval around e_kpa
    assert fits[0].ci95_kpa == pytest.approx((53.1, 55.3))


def test_read_displacement_by_ref(make_session) -> None:  # type: ignore[no-untyped-def]
    path = make_session("s1", positions=[4], pushes=[5])
    with SessionReader(path) as reader:
        ref = reader.sequences()[0]
    volume = read_displacement(ref)
    assert volume.shape == (35, 64, 96) and volume.dtype == np.float32


_LIVE_WRITER = textwrap.dedent("""
    import sys
    from shearlab.datasets import SessionWriter
    from shearlab.training.synthetic import synthetic_record, synthetic_session_info
    info = synthetic_session_info("live")
    with SessionWriter.open(sys.argv[1], session=info, fsync=False) as writer:
        for push in range(1, 7):
            writer.append_sequence(synthetic_record(info, 0, push))
            if push % 3 == 0:
                print(push, flush=True)
                sys.stdin.readline()
""")


def test_live_reader_follows_a_running_writer(tmp_path: Path) -> None:
    path = tmp_path / "live.h5"
    child = subprocess.Popen([sys.executable, "-c", _LIVE_WRITER, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "3"  # type: ignore[union-attr]
        with SessionReader(path) as reader:
            assert reader.live
            assert [r.push_index for r in reader.sequences()] == [1, 2, 3]
            child.stdin.write("go\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
            assert child.stdout.readline().strip() == "6"  # type: ignore[union-attr]
            reader.refresh()
            keys = [r.key for r in reader.sequences()]
            assert keys == [sequence_key(0, p) for p in range(1, 7)]
            reader.verify_sequence(keys[-1])
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.close()  # type: ignore[union-attr]
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
