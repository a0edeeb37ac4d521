"""Shared fixtures: loopback addresses, twin processes on them, rig and plan files, synthetic sessions,
and a Prefect test harness."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rig_files import twin_rig

from shearlab.devices.connect import RigDevices
from shearlab.devices.twin_client import TwinProcess, start_twin

ROOT = Path(__file__).resolve().parents[1]
# The ephemeral API's usage telemetry has no route out here and logs errors when it tries; set before
# any test module imports prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def make_session(tmp_path: Path) -> Callable[..., Path]:
    """``make_session(session_id, concentration_pct=10.0, positions=range(2), **kw) -> path``: a small
    synthetic session (35 x 64 x 96 grid, the paper's pixel pitch)."""
    from shearlab.training.synthetic import synthetic_session_info, write_synthetic_session

    def _make(session_id: str, concentration_pct: float = 10.0, positions: range | list[int] = range(2),
              folder: Path | None = None, **kwargs: object) -> Path:
        info = synthetic_session_info(session_id, concentration_pct=concentration_pct)
        path = (folder or tmp_path) / f"{session_id}.h5"
        return write_synthetic_session(path, info, positions=positions, **kwargs)  # type: ignore[arg-type]

    return _make


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def shearlab_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``shearlab_cli("rig", "check", ...)`` runs the ``shearlab`` command in this process, through its one
    error handler, and returns the exit code, stdout and stderr."""
    from shearlab.orchestrator.cli import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as ended:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = ended.value.code
        return CliResult(code if isinstance(code, int) else (0 if code is None else 1), captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One ephemeral Prefect API for the whole session (its start costs ~20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


# 127.0.0.0/8 is loopback: tests take addresses from 127.10.0.0 up, clear of the rigs' 127.0.0.x.
# A block of 127.x.0.0/16 per test process: test suites of other checkouts may run on the same machine.
_LOOPBACK_BLOCK = 10 + os.getpid() % 240
_LOOPBACK_HOSTS = (f"127.{_LOOPBACK_BLOCK}.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@pytest.fixture(scope="session")
def loopback_host() -> Callable[[], str]:
    """``loopback_host()`` returns a loopback address no other test of the session uses: a twin serves the
    UR's fixed ports, so two twins (or a twin and a lingering socket of an earlier test) need two addresses."""
    return lambda: next(_LOOPBACK_HOSTS)


@pytest.fixture
def twin_factory(loopback_host: Callable[[], str]) -> Iterator[Callable[..., TwinProcess]]:
    """``twin_factory(speed=..., world=...)`` starts a twin process on a fresh loopback address; all are
    stopped after the test."""
    started: list[TwinProcess] = []

    def make(*, speed: float = 10.0, world: Path | None = None) -> TwinProcess:
        twin = start_twin(loopback_host(), speed=speed, world=world)
        started.append(twin)
        return twin

    yield make
    for twin in started:
        twin.stop()


@pytest.fixture
def rig_file(tmp_path: Path) -> Callable[..., Path]:
    """``rig_file(host, speed)`` writes a twin rig file for that twin and returns its path."""

    def write(host: str, speed: float, *, extra: str = "") -> Path:
        return twin_rig(tmp_path, host, speed=speed, extra=extra)

    return write


@pytest.fixture
def sim_devices() -> Iterator[RigDevices]:
    """Every device of ``rigs/sim.toml``, simulated in process; ``stand_in`` is the ``SimulatedRig``."""
    from shearlab.devices.connect import open_devices, rig_backend
    from shearlab.protocols.rig import load_rig

    rig = load_rig(ROOT / "rigs" / "sim.toml")
    with rig_backend(rig) as sim, open_devices(rig, sim, stand_in=sim) as devices:  # type: ignore[arg-type]
        yield devices


# Blocks of the default world and the calibrated moduli the tests label them with (kPa).
WORLD_BLOCKS = {
    "block_10p0": ("B1-10.0", 10.0, 55.0, 200.0, 54.3),
    "block_17p5": ("B1-17.5", 17.5, -55.0, 320.0, 124.9),
}


@pytest.fixture
def campaign_plan():
    """``campaign_plan(folder, positions=, pushes=, blocks=, max_attempts=, extra=, qc=)`` writes a campaign
    plan over blocks of the default world, and a calibration record per block's batch (id
    ``cal-<batch>-test``), into ``folder``; returns the plan's path. ``extra`` and ``qc`` are more
    ``key = value`` lines for the plan and its ``[qc]`` table."""

    def write(folder: Path, *, positions: int = 1, pushes: tuple[float, ...] = (-8.0, 8.0),
              blocks: tuple[str, ...] = ("block_10p0",), max_attempts: int = 3, name: str = "test",
              extra: tuple[str, ...] = (), qc: tuple[str, ...] = ()) -> Path:
        from shearlab.datasets.records import CalibrationFit
        from shearlab.orchestrator.calibration_records import save_record

        cal = folder / "cal"
        lines = [f'name = "{name}"', f"n_positions = {positions}", f"push_lateral_mm = {list(pushes)}",
                 f'out_dir = "{folder / "sessions"}"', f'calibration_dir = "{cal}"', *extra, "",
                 "[qc]", f"max_attempts = {max_attempts}", *qc, ""]
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


@pytest.fixture
def calibration_plan():
    """``calibration_plan(folder, {batch_id: concentration_pct}, cylinders=2, name=, plate_speed_mm_s=)``
    writes a calibration plan (records go to ``folder / "cal"``) and returns its path."""

    def write(folder: Path, batches: dict[str, float], *, cylinders: int = 2, name: str = "test",
              plate_speed_mm_s: float | None = None) -> Path:
        lines = [f'name = "{name}"', f'out_dir = "{folder / "cal"}"', ""]
        for batch_id, concentration_pct in batches.items():
            lines += ["[[batches]]", f'batch_id = "{batch_id}"', f"concentration_pct = {concentration_pct}",
                      f"cylinders = {cylinders}", ""]
        if plate_speed_mm_s is not None:
            lines += ["[indentation]", f"plate_speed_mm_s = {plate_speed_mm_s}", ""]
        path = folder / "calibration.toml"
        path.write_text("\n".join(lines))
        return path

    return write
