"""The indentation calibration flow against a twin: the hidden modulus of each batch is recovered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shearlab.datasets.reader import SessionReader
from shearlab.orchestrator.calibration_records import load_record
from shearlab.orchestrator.flows.calibration import calibration_flow, new_calibration_id, session_path
from shearlab.protocols.phantoms import cast_batch
from shearlab.protocols.plans import load_calibration_plan

SPEED = 200.0


def test_a_refit_within_the_same_second_gets_its_own_id():
    at = datetime(2026, 11, 29, 1, 57, 27, tzinfo=UTC)
    first = new_calibration_id("T-10", at, set())
    assert first == "cal-T-10-20261129T015727"
    second = new_calibration_id("T-10", at, {first})
    third = new_calibration_id("T-10", at, {first, second})
    assert len({first, second, third}) == 3 and second.startswith(first)


@pytest.mark.slow
def test_mini_calibration_recovers_each_batch_modulus(tmp_path, twin_factory, rig_file, calibration_plan, prefect_harness):
    twin = twin_factory(speed=SPEED)
    rig = rig_file(twin.host, SPEED)
    plan_path = calibration_plan(tmp_path, {"T-10": 10.0, "T-17.5": 17.5}, name="mini")
    records = calibration_flow(rig=rig, plan=plan_path, endpoints=twin.endpoints)

    plan = load_calibration_plan(plan_path)
    assert [r.batch_id for r in records] == ["T-10", "T-17.5"]
    for record, batch in zip(records, plan.batches, strict=True):
        # Cylinders of a batch differ (the twin casts each with its own modulus): the interval from
        # their spread holds the batch's hidden truth, and with two cylinders it is wide (t = 12.7).
        truth_kpa = cast_batch(batch.batch_id, batch.concentration_pct).e_static_pa / 1e3
        assert record.ci95_kpa[0] < truth_kpa < record.ci95_kpa[1]
        assert record.e_kpa == pytest.approx(truth_kpa, rel=0.1)
        assert record.cylinders == 2 and len(record.extra["cylinder_e_kpa"]) == 2
        assert record.sample_sd_kpa > 0
        assert record.r2 > 0.9
        # The record on disk is what acquisitions label with.
        assert load_record(plan.out_dir, batch.batch_id).calibration_id == record.calibration_id
        with SessionReader(session_path(plan, batch)) as reader:
            runs = reader.indentation_runs()
            fits = reader.calibration_fits()
        assert sorted(r.cylinder_index for r in runs) == [0, 1]
        # The force limit is enforced inside the loop: no sample beyond 2 N by more than a sample's worth.
        assert max(float(r.force_n.max()) for r in runs) < plan.indentation.stop_force_n + 0.1
        assert fits[-1].calibration_id == record.calibration_id
    assert (plan.out_dir / "stress_strain_T-10.png").stat().st_size > 0

    # Rerunning resumes: no cylinder is indented twice, a new fit is recorded from the same runs.
    again = calibration_flow(rig=rig, plan=plan_path, endpoints=twin.endpoints)
    assert again[0].e_kpa == pytest.approx(records[0].e_kpa, rel=1e-9)
    assert again[0].calibration_id != records[0].calibration_id
