"""UFF export and the `shearlab dataset` commands."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from shearlab.datasets import SessionReader, export_uff
from shearlab.datasets.layout import SEQUENCES
from shearlab.datasets.uff import read_uff_displacement_m


def test_uff_holds_beamformed_data_in_metres(make_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = make_session("u1", positions=[0], pushes=[2, 3], failed_keys={"p000_push3"})
    out = tmp_path / "u1.uff"
    assert export_uff(session, out) == ["p000_push2"]  # a failed sequence has nothing to export
    with SessionReader(session) as reader:
        volume_um = reader.read_displacement("p000_push2")
        grid = reader.grid
    with h5py.File(out, "r") as fh:
        bd = fh["p000_push2"]
        assert bd.attrs["class"] == "uff.beamformed_data"
        assert bd["scan"].attrs["class"] == "uff.linear_scan"
        # MATLAB [pixel x channel x wave x frame] seen from HDF5's C order
        assert bd["data"].shape == (35, 1, 1, 64 * 96)
        np.testing.assert_allclose(bd["scan"]["z_axis"][0], grid.depth_m, rtol=1e-6)
        assert bd["frame_rate"][0, 0] == pytest.approx(7000.0)
        # pixel p of a linear scan is (z = p mod Nz, x = p div Nz)
        assert bd["data"][4, 0, 0, 3 * 64 + 5] == pytest.approx(volume_um[4, 5, 3] * 1e-6, rel=1e-6)
    np.testing.assert_allclose(read_uff_displacement_m(out, "p000_push2"), volume_um * 1e-6, rtol=1e-6)


def test_an_independent_reader_reads_the_uff_export(make_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """pyuff-ustb (USTB's UFF in Python, not ours) reads the export: the scan's pixel coordinates it computes
    and the data it reads put every sample where the session has it."""
    pyuff_ustb = pytest.importorskip("pyuff_ustb")
    from pyuff_ustb.readers import H5Reader

    session = make_session("u2", positions=[0], pushes=[4])
    out = tmp_path / "u2.uff"
    export_uff(session, out)
    with SessionReader(session) as reader:
        volume_um = reader.read_displacement("p000_push4")
        grid = reader.grid
    data = pyuff_ustb.BeamformedData(H5Reader(str(out))["p000_push4"])
    assert isinstance(data.scan, pyuff_ustb.LinearScan)
    assert data.frame_rate == pytest.approx(7000.0) and data.modulation_frequency == pytest.approx(7.5e6)
    x_m, z_m, samples = np.asarray(data.scan.x), np.asarray(data.scan.z), np.asarray(data.data)[:, 0, 0, :]
    assert samples.shape == (35, 64 * 96)
    # Every pixel: find it in the session's grid by the coordinates pyuff-ustb gives it.
    lateral = np.abs(x_m[:, None] - grid.lateral_m[None, :]).argmin(axis=1)
    depth = np.abs(z_m[:, None] - grid.depth_m[None, :]).argmin(axis=1)
    np.testing.assert_allclose(x_m, grid.lateral_m[lateral], atol=1e-9)
    np.testing.assert_allclose(z_m, grid.depth_m[depth], atol=1e-9)
    np.testing.assert_allclose(samples, volume_um[:, depth, lateral] * 1e-6, rtol=1e-6)


def test_info_and_check_on_a_good_session(make_session, shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    session = make_session("c1", positions=[0], pushes=[1, 2])
    result = shearlab_cli("dataset", "info", session)
    assert result.code == 0, result.err
    assert "c1" in result.out and "block" in result.out
    (info,) = json.loads(shearlab_cli("dataset", "info", session, "--json").out)
    assert info["session_id"] == "c1" and info["concentration_pct"] == 10.0 and info["sequences_complete"] == 2
    assert info["schema_version"] == 4 and info["checksum"] == "blake3"
    assert all(key in result.out for key in info)  # the table shows every key the JSON has
    result = shearlab_cli("dataset", "check", session, "--json")
    assert result.code == 0
    (row,) = json.loads(result.out)
    assert row["ok"] and row["sequences"] == 2 and row["problems"] == []


def test_check_names_file_sequence_and_cause(make_session, shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    session = make_session("c2", positions=[0], pushes=[1, 2])
    with h5py.File(session, "r+") as fh:  # tamper with a stored value after the fact
        fh[SEQUENCES]["push_lateral_mm"][1] = 99.0
    result = shearlab_cli("dataset", "check", session)
    assert result.code == 5
    assert f"error: {session}: sequence p000_push2: checksum mismatch" in result.err
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize("content, message", [
    (b"hello", "not an HDF5 file"),
    (None, "file not found"),
])
def test_bad_input_gives_a_message_not_a_traceback(tmp_path: Path, shearlab_cli, content: bytes | None, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.h5"
    if content is not None:
        path.write_bytes(content)
    for command in (["info", path], ["check", path], ["export-uff", path, tmp_path / "o.uff"]):
        result = shearlab_cli("dataset", *command)
        assert result.code == 5, command
        assert message in result.out + result.err and "Traceback" not in result.out + result.err


def test_folder_check_reports_each_bad_file(make_session, tmp_path: Path, shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "f"
    folder.mkdir()
    make_session("g1", positions=[0], pushes=[1], folder=folder)
    (folder / "zz.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    result = shearlab_cli("dataset", "check", folder, "--json")
    assert result.code == 5
    rows = {Path(r["path"]).name: r for r in json.loads(result.out)}
    assert rows["g1.h5"]["ok"] and not rows["zz.h5"]["ok"]
    assert f"error: {folder / 'zz.h5'}: HDF5 file cannot be opened" in result.err
