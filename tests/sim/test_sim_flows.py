"""A whole campaign and a whole calibration on the simulated rig (``rigs/sim.toml``), in this process:
the Prefect flows, the procedures and the session files, with no twin process and no sockets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.integrity import check_session
from shearlab.datasets.reader import SessionReader
from shearlab.orchestrator.flows.acquisition import campaign_flow, fanout_campaign_flow
from shearlab.orchestrator.flows.calibration import calibration_flow
from shearlab.protocols.phantoms import cast_batch

# Prefect's local API starts once per session (~20 s); the flows themselves take seconds.
pytestmark = pytest.mark.slow

SIM_RIG = Path(__file__).resolve().parents[2] / "rigs" / "sim.toml"


def test_a_campaign_runs_in_process_in_seconds(campaign_plan, tmp_path: Path, prefect_harness) -> None:
    plan_path = campaign_plan(tmp_path, positions=2, pushes=(-8.0, 8.0), blocks=("block_10p0", "block_17p5"), name="sim")
    started = time.perf_counter()
    summary = campaign_flow(rig=SIM_RIG, plan=plan_path)
    elapsed = time.perf_counter() - started
    assert summary.written == 2 * 2 * 2 and summary.failed == 0 and summary.skipped == 0
    # Eight full-size shots (0.5 s of physics each) and their Loupas; no wall time spent waiting on devices.
    assert elapsed < 60, f"{elapsed:.0f} s"
    for session in summary.sessions:
        assert check_session(session).ok
        with SessionReader(session) as reader:
            for ref in reader.sequences():
                record = reader.read_sequence(ref.key)
                assert record.qc.passed and record.attempt == 1, record.qc
                assert abs(record.contact_force_n - 0.2).max() < 0.05
    again = campaign_flow(rig=SIM_RIG, plan=plan_path)
    assert again.written == 0 and again.skipped == 8


def test_a_calibration_runs_in_process_and_recovers_the_hidden_modulus(tmp_path: Path, calibration_plan, prefect_harness) -> None:
    # Five times the paper's plate speed: the same stops and fit, a fifth of the samples.
    plan_path = calibration_plan(tmp_path, {"S-17.5": 17.5}, name="sim", plate_speed_mm_s=0.05)
    started = time.perf_counter()
    records = calibration_flow(rig=SIM_RIG, plan=plan_path)
    elapsed = time.perf_counter() - started
    # The two cylinders are samples of the batch, each with its own modulus: the interval from their
    # spread holds the batch's hidden truth.
    truth_kpa = cast_batch("S-17.5", 17.5).e_static_pa / 1e3
    assert len(records) == 1 and records[0].cylinders == 2
    assert records[0].ci95_kpa[0] < truth_kpa < records[0].ci95_kpa[1]
    assert records[0].e_kpa == pytest.approx(truth_kpa, rel=0.1)
    assert elapsed < 60, f"{elapsed:.0f} s"


def test_a_campaign_fans_out_over_two_rigs_merges_and_resumes_without_duplicates(campaign_plan, tmp_path: Path,
                                                                                   prefect_harness) -> None:
    plan_path = campaign_plan(tmp_path, positions=3, pushes=(-8.0, 8.0), blocks=("block_10p0",), name="fan")
    rigs = [SIM_RIG, tmp_path / "sim_b.toml"]
    rigs[1].write_text(SIM_RIG.read_text().replace('name = "sim"', 'name = "sim-b"'))  # its own device locks
    summary = fanout_campaign_flow(rigs=rigs, plan=plan_path)
    assert summary.written == 3 * 2 and summary.rig == "sim+sim-b"
    assert [Path(s).name for s in summary.sessions] == ["fan_block_10p0_share1of2.h5", "fan_block_10p0_share2of2.h5"]
    with SessionReader(summary.sessions[0]) as first, SessionReader(summary.sessions[1]) as second:
        assert {r.position_index for r in first.sequences()} == {0, 2}
        assert {r.position_index for r in second.sequences()} == {1}
    refs = Catalogue(Path(summary.sessions[0]).parent).query(labelled=True)
    assert sorted((r.position_index, r.push_index) for r in refs) == [(p, k) for p in range(3) for k in (1, 2)]
    again = fanout_campaign_flow(rigs=rigs, plan=plan_path)
    assert again.written == 0 and again.skipped == 6
    assert len(Catalogue(Path(summary.sessions[0]).parent).query(labelled=True)) == 6
