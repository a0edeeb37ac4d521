"""Scale-out: a real Prefect server, a process worker, and campaigns on two rigs at once.

Each rig's devices are held through one-slot global concurrency limits named for that rig: a campaign
on a busy rig waits for it, while a campaign on another rig goes ahead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from shearlab.datasets.reader import SessionReader
from shearlab.datasets.records import sequence_key
from shearlab.orchestrator.flows.acquisition import ACQUISITION_DEVICES
from shearlab.orchestrator.locks import device_locks, hold_devices
from shearlab.protocols.rig import load_rig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
PREFECT = ROOT / ".venv" / "bin" / "prefect"
SPEED = 10.0
POOL = "rigs-test"
SERVER_START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 180.0
CLI_TIMEOUT_S = 60.0
PUSHES_MM = (-8.0, 8.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc (a worker puts each flow run in its own session)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """Stop a child started in its own session, and every process it started."""
    below = _descendants(proc.pid)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout_s)
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture
def prefect_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real ``prefect server start`` with its own home; yields the environment that points at it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect_home"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="1",
               PREFECT_WORKER_PREFETCH_SECONDS="1", PREFECT_WORKER_HEARTBEAT_SECONDS="5",
               # A run waiting for a device retries within a second of its release, not 30 s later.
               PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS="1")
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not come up:\n{_log_tail(log)}")
            time.sleep(0.5)
        yield env
    finally:
        _stop(server)


@pytest.fixture
def worker(prefect_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """A process work pool and one worker polling it; yields the worker's log file."""
    subprocess.run([str(PREFECT), "work-pool", "create", POOL, "--type", "process"], env=prefect_env,
                   check=True, capture_output=True, timeout=CLI_TIMEOUT_S)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(PREFECT), "worker", "start", "--pool", POOL, "--type", "process"],
                                env=prefect_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield log
    finally:
        _stop(proc)


def _wait_for(client: SyncPrefectClient, run: FlowRun, done: Callable[[State], bool], what: str, worker_log: Path,
              timeout_s: float = RUN_TIMEOUT_S) -> FlowRun:
    """Poll the API until ``done(state)`` holds for ``run``; returns the fresh flow run."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.read_flow_run(run.id)
        if run.state is not None and done(run.state):
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"flow run {run.name} not {what} after {timeout_s} s: {run.state}\n{_log_tail(worker_log)}")
        time.sleep(0.5)


def test_two_rigs_acquire_side_by_side_under_one_worker(campaign_plan, tmp_path, prefect_env, worker, twin_factory, rig_file):
    twins = [twin_factory(speed=SPEED) for _ in range(2)]
    rig_paths = [rig_file(twin.host, SPEED) for twin in twins]
    plan_paths = []
    for twin in twins:
        folder = tmp_path / twin.host
        folder.mkdir()
        plan_paths.append(campaign_plan(folder, pushes=PUSHES_MM, name="scale"))
    sessions = [plan.parent / "sessions" / "scale_block_10p0.h5" for plan in plan_paths]
    rigs = [load_rig(path) for path in rig_paths]

    def submit(i: int) -> FlowRun:
        return run_deployment("swei-campaign/scale-test", timeout=0, parameters={
            "rig": str(rig_paths[i]), "plan": str(plan_paths[i]), "endpoints": twins[i].endpoints.model_dump(mode="json")})

    with temporary_settings({PREFECT_API_URL: prefect_env["PREFECT_API_URL"]}), \
            get_client(sync_client=True) as client, contextlib.ExitStack() as rig_a_in_use:
        campaign = flow.from_source(source=str(ROOT), entrypoint="orchestrator/flows/acquisition.py:campaign_flow")
        campaign.deploy(name="scale-test", work_pool_name=POOL, print_next_steps=False, ignore_warnings=True,
                        parameters={"rig": str(rig_paths[0]), "plan": str(plan_paths[0])})

        # Someone holds rig A (as another campaign on it would): run A starts, then waits for its devices.
        rig_a_in_use.enter_context(hold_devices(rigs[0], ACQUISITION_DEVICES, twins[0].endpoints))
        run_a = _wait_for(client, submit(0), lambda s: s.is_running(), "running", worker)
        # Rig B is free: its run acquires while rig A is still held.
        run_b = _wait_for(client, submit(1), lambda s: s.is_final(), "finished", worker)
        assert run_b.state.is_completed(), f"{run_b.state}\n{_log_tail(worker)}"
        run_a = client.read_flow_run(run_a.id)
        assert run_a.state.is_running() and not sessions[0].exists()

        rig_a_in_use.close()
        run_a = _wait_for(client, run_a, lambda s: s.is_final(), "finished", worker)
        assert run_a.state.is_completed(), f"{run_a.state}\n{_log_tail(worker)}"
        assert run_a.start_time < run_b.start_time and run_b.end_time < run_a.end_time

        # Each rig's devices have their own one-slot limits (rig B's created by its run), all free again.
        names = [list(device_locks(rig, ACQUISITION_DEVICES)) for rig in rigs]
        assert len(set(names[0] + names[1])) == 2 * len(ACQUISITION_DEVICES)
        for name in names[0] + names[1]:
            limit = client.read_global_concurrency_limit_by_name(name)
            assert limit.limit == 1 and limit.active_slots == 0

    for session in sessions:
        with SessionReader(session) as reader:
            refs = reader.sequences()
            assert [ref.key for ref in refs] == [sequence_key(0, k) for k in range(1, len(PUSHES_MM) + 1)]
            for ref in refs:
                record = reader.read_sequence(ref.key)
                assert record.qc.passed and not record.failed
                assert record.label.calibration_id == "cal-B1-10.0-test"
