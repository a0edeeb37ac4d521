"""How hard the twin's lab is, on sessions acquired through the normal flows: 3 cylinders per batch, a
campaign of 3 positions x 7 pushes on every block of the shipped world (issue 10's "done when").

The figures the issue asks for are measured and printed by ``shearlab twin realism`` (its markdown and
JSON are checked here too). Two of them do not reach the issue's limits with the sourced magnitudes:
see ``docs/twin.md`` ("What the twin does not reach"); this test guards what the effects do achieve.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rig_files import twin_rig
from typer.testing import CliRunner

from shearlab.devices.twin.world import World
from shearlab.devices.twin.world_config import load_world
from shearlab.orchestrator import realism
from shearlab.orchestrator.cli import app
from shearlab.orchestrator.demo import Rigs

pytestmark = pytest.mark.slow

# The first twin: displacement std predicted the label to 0.6 kPa against 30.8 kPa for the mean (SPEC §4),
# a ratio of 0.02. The effects must keep the strongest shortcut well above that.
FIRST_TWIN_SHORTCUT_RATIO = 0.02


@pytest.fixture(scope="module")
def acquired(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None,
             loopback_host: Callable[[], str]) -> tuple[Path, Path, Path]:
    out = tmp_path_factory.mktemp("realism")
    rigs = Rigs(indentation=twin_rig(out, loopback_host(), base="twin_indentation.toml"), acquisition=twin_rig(out, loopback_host()))
    sessions, calibration = realism.acquire_sessions(out, positions=3, rigs=rigs)
    return out, sessions, calibration


def test_group_speed_follows_each_blocks_true_speed(acquired: tuple[Path, Path, Path]) -> None:
    """An independent estimator (time to peak) reads every block within 5 % of its gel's elastic
    shear speed on average, and in the order of the blocks' true speeds. The block is a sample of its
    batch and can differ from it: ordering by concentration holds only where the casts allow it."""
    _, sessions, calibration = acquired
    report = realism.measure(sessions, calibration)
    world = World(load_world())
    blocks = {f"blocks_{b.name}": b for b in world.config.blocks}
    true_speed, batch_speed, measured = [], [], []
    for findings in report.blocks:
        block = blocks[findings.session_id]
        true_speed.append(world.block_truths(block)[block.batch_id].shear_speed_m_s)
        batch_speed.append(world.truth(block.batch_id, block.concentration_pct).shear_speed_m_s)
        measured.append(findings.group_speed_m_s)
    measured, true_speed, batch_speed = np.array(measured), np.array(true_speed), np.array(batch_speed)
    assert np.mean(np.abs(measured / true_speed - 1)) < 0.05
    assert np.mean(np.abs(measured / batch_speed - 1)) < 0.05
    assert np.all(np.abs(measured / true_speed - 1) < 0.08)
    order = np.argsort(true_speed)
    assert np.all(np.diff(measured[order]) > 0)


def test_shortcuts_are_measured_and_far_weaker_than_on_the_first_twin(acquired: tuple[Path, Path, Path]) -> None:
    _, sessions, calibration = acquired
    report = realism.measure(sessions, calibration)
    assert {s.feature for s in report.shortcuts} == {"displacement_std_um", "peak_near_focus_um"}
    assert report.strongest_shortcut.ratio > 5 * FIRST_TWIN_SHORTCUT_RATIO
    # Peak displacement varies between positions of a block as the push's force does (a few per cent per
    # source, shot, coupling, bubbles and estimator noise together).
    assert np.median([b.peak_cv for b in report.blocks]) > 0.05
    # Cylinders of one batch differ: calibration records carry their spread.
    assert len(report.cylinder_cv) == 6 and all(cv > 0 for cv in report.cylinder_cv.values())
    assert report.position_correlation["pairs"] == 6 * 7 * 3


def test_realism_command_reads_sessions_and_writes_its_report(acquired: tuple[Path, Path, Path]) -> None:
    out, sessions, calibration = acquired
    result = CliRunner().invoke(app, ["twin", "realism", "--sessions", str(sessions), "--calibration", str(calibration),
                                      "--out", str(out / "report"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["strongest_shortcut"]["ratio"] == pytest.approx(realism.measure(sessions, calibration).strongest_shortcut.ratio)
    assert data["configured"]["gel"]["sample_modulus_cv"] == pytest.approx(0.035)
    markdown = (out / "report" / "realism.md").read_text()
    assert "Shortcut checks" in markdown and "blocks_block_17p5" in markdown
