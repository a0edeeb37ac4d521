"""Shared fixtures: twin processes on their own loopback addresses, and a Prefect test harness."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shearlab.devices.twin.process import TwinProcess, start_twin

ROOT = Path(__file__).resolve().parents[1]
# The ephemeral API's usage telemetry has no route out here and logs errors when it tries; set before
# any test module imports prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One ephemeral Prefect API for the whole session (its start costs ~20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def twin_factory() -> Iterator:
    """``twin_factory(host, speed=...)`` starts a twin process; all are stopped after the test."""
    started: list[TwinProcess] = []

    def make(host: str, *, speed: float = 10.0, world: Path | None = None) -> TwinProcess:
        twin = start_twin(host, speed=speed, world=world)
        started.append(twin)
        return twin

    yield make
    for twin in started:
        twin.stop()


@pytest.fixture
def rig_file(tmp_path: Path):
    """``rig_file(host, speed)`` writes a twin rig file for that twin and returns its path."""

    def write(host: str, speed: float, *, extra: str = "") -> Path:
        text = (ROOT / "rigs" / "twin.toml").read_text()
        text = text.replace('host = "127.0.0.5"', f'host = "{host}"').replace("speed = 10.0", f"speed = {speed}")
        path = tmp_path / f"rig_{host}.toml"
        path.write_text(text + extra)
        return path

    return write


# Blocks of the default world and the calibrated moduli the tests label them with (kPa).
WORLD_BLOCKS = {
    "block_10p0": ("B1-10.0", 10.0, 55.0, 200.0, 54.3),
    "block_17p5": ("B1-17.5", 17.5, -55.0, 320.0, 124.9),
}


@pytest.fixture
def campaign_plan():
    """``campaign_plan(folder, positions=, pushes=, blocks=, max_attempts=)`` writes a campaign plan
    over blocks of the default world, and a calibration record per block's batch (id
    ``cal-<batch>-test``), into ``folder``; returns the plan's path."""

    def write(folder: Path, *, positions: int = 1, pushes: tuple[float, ...] = (-8.0, 8.0),
              blocks: tuple[str, ...] = ("block_10p0",), max_attempts: int = 3, name: str = "test") -> Path:
        from shearlab.datasets.records import CalibrationFit
        from shearlab.orchestrator.calibration_records import save_record

        cal = folder / "cal"
        lines = [f'name = "{name}"', f"n_positions = {positions}", f"push_lateral_mm = {list(pushes)}",
                 f'out_dir = "{folder / "sessions"}"', f'calibration_dir = "{cal}"', "",
                 "[qc]", f"max_attempts = {max_attempts}", ""]
        for block in blocks:
            batch, conc, x_mm, y_mm, e_kpa = WORLD_BLOCKS[block]
            save_record(cal, CalibrationFit(calibration_id=f"cal-{batch}-test", batch_id=batch, concentration_pct=conc,
                                            e_kpa=e_kpa, ci95_kpa=(e_kpa - 1, e_kpa + 1), cylinders=8,
                                            sample_sd_kpa=1.2, n_points=100, r2=0.999))
            lines += ["[[blocks]]", f'name = "{block}"', f'batch_id = "{batch}"', f"concentration_pct = {conc}",
                      f"x_mm = {x_mm}", f"y_mm = {y_mm}", ""]
        path = folder / "campaign.toml"
        path.write_text("\n".join(lines))
        return path

    return write
