"""UFF export and the `shearlab dataset` commands."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from shearlab.datasets import SessionReader, export_uff
from shearlab.datasets.cli import app
from shearlab.datasets.layout import SEQUENCES
from shearlab.datasets.uff import read_uff_displacement_m

runner = CliRunner()


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


def test_info_and_check_on_a_good_session(make_session) -> None:  # type: ignore[no-untyped-def]
    session = make_session("c1", positions=[0], pushes=[1, 2])
    result = runner.invoke(app, ["info", str(session)])
    assert result.exit_code == 0, result.output
    assert "c1 (block)" in result.output and "10 %" in result.output
    result = runner.invoke(app, ["check", str(session)])
    assert result.exit_code == 0 and "ok" in result.output


def test_check_names_file_sequence_and_cause(make_session) -> None:  # type: ignore[no-untyped-def]
    session = make_session("c2", positions=[0], pushes=[1, 2])
    with h5py.File(session, "r+") as fh:  # tamper with a stored value after the fact
        fh[SEQUENCES]["push_lateral_mm"][1] = 99.0
    result = runner.invoke(app, ["check", str(session)])
    assert result.exit_code == 1
    assert f"{session}: sequence p000_push2: checksum mismatch" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content, message", [
    (b"hello", "not an HDF5 file"),
    (None, "file not found"),
])
def test_bad_input_gives_a_message_not_a_traceback(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.h5"
    if content is not None:
        path.write_bytes(content)
    for command in (["info", str(path)], ["check", str(path)], ["export-uff", str(path), str(tmp_path / "o.uff")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, command
        assert message in result.output and "Traceback" not in result.output
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_folder_check_reports_each_bad_file(make_session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "f"
    folder.mkdir()
    make_session("g1", positions=[0], pushes=[1], folder=folder)
    (folder / "zz.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    result = runner.invoke(app, ["check", str(folder)])
    assert result.exit_code == 1
    assert "g1.h5" in result.output and "zz.h5" in result.output and "1 of 2 files" in result.output
