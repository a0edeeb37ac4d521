"""The command line as a user meets it: --version, help on every option, one error line and a distinct exit
code for every bad input (no traceback), --json with the same keys as the table, rig check's forces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

import shearlab
from shearlab.orchestrator.cli import app
from shearlab.orchestrator.cli.errors import ExitCode, classify

ROOT = Path(__file__).resolve().parents[2]
SIM_RIG = ROOT / "rigs" / "sim.toml"


def test_version_is_the_package_version(shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    result = shearlab_cli("--version")
    assert result.code == 0 and result.out.strip() == f"shearlab {shearlab.__version__}"
    assert shearlab.__version__[0].isdigit()


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command below ``group`` with its path (typer's own click, so by what they have, not their class)."""
    found = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
        else:
            found.append(((*prefix, name), command))
    return found


def test_every_command_and_option_says_what_it_is_for() -> None:
    commands = _commands(typer.main.get_command(app))  # type: ignore[arg-type]
    assert len(commands) >= 16
    for path, command in commands:
        assert command.help, path
        for param in command.params:
            if not getattr(param, "hidden", False):
                assert getattr(param, "help", None), (path, param.name)


def test_fixed_values_are_choices(shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    for command, choices in ((["demo"], "<quick|paper>"), (["train"], "<65|33|17|9|5>"), (["train"], "<auto|cpu|cuda>"),
                             (["predict"], "<auto|cpu|cuda>")):
        assert choices in shearlab_cli(*command, "--help").out, command


def _bad_inputs(tmp: Path) -> list[tuple[list[object], int, str]]:
    """(command, exit code, what the error line must name), for every command."""
    bad_toml = tmp / "bad.toml"
    bad_toml.write_text("name = [\n")
    bad_rig = tmp / "bad_rig.toml"
    bad_rig.write_text('name = "x"\n[robot.limits]\nmax_contact_force_n = -1\n')
    bad_endpoints = tmp / "endpoints.json"
    bad_endpoints.write_text("{}")
    not_hdf5 = tmp / "session.h5"
    not_hdf5.write_bytes(b"hello")
    bad_split = tmp / "split.json"
    bad_split.write_text("{}")
    bracketed = tmp / "[twin]" / "rig.toml"
    missing = tmp / "missing.toml"
    plans = ROOT / "plans"
    return [
        (["rig", "check", missing], 3, f"{missing}: file not found"),
        (["rig", "check", bracketed], 3, f"{bracketed}: file not found"),
        (["rig", "check", bad_toml], 3, f"{bad_toml}: not valid TOML"),
        (["rig", "check", bad_rig], 3, "robot.limits.max_contact_force_n"),
        (["rig", "check", SIM_RIG, "--endpoints", bad_endpoints], 3, f"{bad_endpoints}: cannot read twin endpoints"),
        (["calibrate", SIM_RIG, missing], 3, f"{missing}: file not found"),
        (["calibrate", bad_rig, plans / "calibration.toml"], 3, f"{bad_rig}:"),
        (["acquire", SIM_RIG, bad_toml], 3, f"{bad_toml}: not valid TOML"),
        (["acquire", SIM_RIG, plans / "blocks.toml", "--max-positions", "0"], 2, "--max-positions"),
        (["acquire", SIM_RIG], 2, "Missing argument 'PLANFILE'"),
        (["serve"], 2, "nothing to serve"),
        (["serve", "--blocks", missing], 3, f"{missing}: file not found"),
        (["demo", "--scale", "huge"], 2, "--scale"),
        (["demo", "--world", missing], 3, f"{missing}: file not found"),
        (["dataset", "info", tmp / "none.h5"], 5, "file not found"),
        (["dataset", "check", not_hdf5], 5, f"{not_hdf5}: not an HDF5 file"),
        (["dataset", "export-uff", not_hdf5, tmp / "out.uff"], 5, f"{not_hdf5}: not an HDF5 file"),
        (["train", tmp, "--split", tmp / "none.json", "--out", tmp / "c.pt"], 5, f"{tmp / 'none.json'}: split file not found"),
        (["train", tmp, "--split", bad_split, "--out", tmp / "c.pt"], 5, f"{bad_split}: not a split"),
        (["train", tmp / "nowhere", "--split", bad_split, "--out", tmp / "c.pt", "--window", "7"], 2, "--window"),
        (["evaluate", tmp / "none.pt", tmp, "--split", bad_split], 5, f"{tmp / 'none.pt'}: checkpoint not found"),
        (["evaluate", not_hdf5, tmp, "--split", bad_split], 5, f"{not_hdf5}: not a readable checkpoint"),
        (["predict", not_hdf5, "--checkpoint", tmp / "none.pt"], 5, f"{tmp / 'none.pt'}: checkpoint not found"),
        (["predict", not_hdf5, "--checkpoint", tmp / "none.pt", "--device", "gpu"], 2, "--device"),
        (["twin", "preview", "--phantom", "nothing"], 2, "no phantom 'nothing'"),
        (["twin", "realism", "--sessions", tmp / "nowhere"], 5, "nowhere"),
        (["nonsense"], 2, "No such command"),
    ]


def test_every_command_answers_bad_input_with_one_line_and_its_exit_code(tmp_path: Path, shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    for command, code, names in _bad_inputs(tmp_path):
        result = shearlab_cli(*command)
        shown = result.out + result.err
        assert result.code == code, (command, shown)
        assert names in " ".join(shown.split()), (command, shown)
        assert "Traceback" not in shown, command
        if code != ExitCode.USAGE:
            assert result.err.startswith("error: ") and result.err.count("\n") == 1, (command, result.err)


def test_a_missing_extra_says_how_to_install_it() -> None:
    code, message = classify(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert code == ExitCode.CONFIG and "pip install 'shearlab[train]'" in message
    code, message = classify(RuntimeError("boom"))
    assert code == ExitCode.UNEXPECTED and "--debug" in message


def test_init_copies_the_shipped_rigs_and_plans(tmp_path: Path, shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    from shearlab.protocols.plans import load_campaign_plan
    from shearlab.protocols.rig import load_rig

    assert shearlab_cli("init", tmp_path).code == 0
    assert load_rig(tmp_path / "rigs" / "twin.toml").twin is not None
    assert load_campaign_plan(tmp_path / "plans" / "blocks.toml").n_positions == 80
    again = shearlab_cli("init", tmp_path)
    assert again.code == 3 and "--force" in again.err


def test_rig_check_reads_each_force_and_its_json_has_the_table_keys(shearlab_cli) -> None:  # type: ignore[no-untyped-def]
    table = shearlab_cli("rig", "check", SIM_RIG)
    assert table.code == 0, table.err
    report = json.loads(shearlab_cli("rig", "check", SIM_RIG, "--json").out)
    rows = {row["device"]: row for row in report["devices"]}
    assert list(rows) == ["robot", "hexapod", "probe_ft", "indenter_ft", "scanner"]
    for key in report["devices"][0]:
        assert key in table.out
    # Biased and untouched, both sensors read their noise; the robot's TCP force is there, the probe in the air.
    assert rows["probe_ft"]["force_n"] < 0.02 and rows["indenter_ft"]["force_n"] < 0.02
    assert rows["robot"]["force_n"] == pytest.approx(0.0, abs=1e-6)
    assert rows["hexapod"]["force_n"] is None and all(row["note"] is None for row in rows.values())
    assert "warning" not in table.err
