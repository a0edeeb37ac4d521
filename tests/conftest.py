"""Shared fixtures: twin processes on their own loopback addresses, and a Prefect test harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shearlab.devices.twin.process import TwinProcess, start_twin

ROOT = Path(__file__).resolve().parents[1]


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
