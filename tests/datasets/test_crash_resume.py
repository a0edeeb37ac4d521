"""A writer killed with SIGKILL at random moments loses nothing it marked complete, and resumes; with
``fsync`` on, the kills also land while a sequence's commit (fsyncs and marker) runs on the writer's
commit thread beside the next append.

The writer runs in a forked process (a fresh interpreter per kill would spend most of the test
importing numpy and h5py); it shares nothing with the test but the file path.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from shearlab.datasets import SessionReader, SessionWriter, check_session, sequence_key
from shearlab.training.synthetic import small_sequence_spec, synthetic_record, synthetic_session_info

POSITIONS, PUSHES = range(10), range(1, 8)
PLAN = [sequence_key(position, push) for position in POSITIONS for push in PUSHES]
KILLS = 20


def _write_plan(path: str, budget: int, started: mp.synchronize.Event, fsync: bool) -> None:
    """Resume the session and append up to ``budget`` missing sequences in plan order, then idle."""
    info = synthetic_session_info("crash", spec=small_sequence_spec(n_frames=35, n_depth=16, n_lateral=16))
    started.set()
    with SessionWriter.open(path, session=info, fsync=fsync) as writer:
        done = writer.completed_keys()
        todo = [(pos, push) for pos in POSITIONS for push in PUSHES if sequence_key(pos, push) not in done]
        for position, push in todo[:budget]:
            writer.append_sequence(synthetic_record(info, position, push, seed=position))
    time.sleep(60)  # idle until killed: a kill here is a moment between acquisitions


def _complete_keys(path: Path) -> list[str]:
    report = check_session(path)
    assert report.ok, report.problems  # opens, markers consistent, every complete row verifies
    with SessionReader(path) as reader:
        return [r.key for r in reader.sequences()]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("fsync", [False, True], ids=["no-fsync", "fsync"])
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, fsync: bool) -> None:
    ctx = mp.get_context("fork")
    path = tmp_path / "crash.h5"
    rng = np.random.default_rng(20261125)
    seconds_per_append, seconds_to_open = 0.04, 0.03  # first guesses, refined from what the writers manage
    done: list[str] = []
    interrupted = 0
    for kill in range(KILLS):
        budget = math.ceil((len(PLAN) - len(done)) / (KILLS + 1 - kill))
        started = ctx.Event()
        child = ctx.Process(target=_write_plan, args=(str(path), budget, started, fsync), daemon=True)
        child.start()
        assert started.wait(timeout=30)
        t0 = time.monotonic()
        # Uniform over the time the budget takes (and a little idle), so a kill can land anywhere:
        # creating the file, clearing a previous crash, between a row's data and its marker.
        time.sleep(float(rng.uniform(0.0, 1.2 * (seconds_to_open + budget * seconds_per_append))))
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(timeout=30)
        elapsed = time.monotonic() - t0
        if not path.exists():  # killed while the file was still being created under a temporary name
            assert not done
            continue
        keys = _complete_keys(path)
        assert len(keys) == len(set(keys)), "duplicate sequences"
        assert keys == PLAN[: len(keys)], "a gap in the plan"
        assert len(keys) >= len(done), "a complete sequence was lost"
        if len(keys) - len(done) < budget:
            interrupted += 1  # killed while opening, resuming or appending, not while idle
        if 0 < len(keys) - len(done) < budget:
            writing = max(elapsed - seconds_to_open, 0.0) / (len(keys) - len(done) + 0.5)
            seconds_per_append = 0.5 * seconds_per_append + 0.5 * writing
        done = keys
    assert len(done) < len(PLAN) and interrupted >= KILLS // 4, (len(done), interrupted)
    child = ctx.Process(target=_write_plan, args=(str(path), len(PLAN), ctx.Event(), fsync), daemon=True)
    child.start()
    deadline = time.monotonic() + 60
    while len(_complete_keys(path)) < len(PLAN) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(timeout=30)
    assert _complete_keys(path) == PLAN
    with SessionReader(path) as reader:
        rows = reader.sequences(include_incomplete=True)
    assert len(rows) == len(PLAN)  # half-written rows were reused, not left as holes
