"""The SWEI campaign flow against a twin: complete, checkable sessions labelled by calibration."""

from __future__ import annotations

from pathlib import Path

import pytest

from shearlab.datasets.integrity import check_session
from shearlab.datasets.reader import SessionReader
from shearlab.datasets.uff import export_uff
from shearlab.devices.twin_client import TwinControl
from shearlab.orchestrator.flows.acquisition import campaign_flow
from shearlab.protocols.plans import load_campaign_plan
from shearlab.training.windows import WindowDataset

pytestmark = pytest.mark.slow

SPEED = 10.0


def test_mini_campaign_writes_labelled_checkable_sessions(tmp_path, twin_factory, rig_file, campaign_plan, prefect_harness):
    twin = twin_factory(speed=SPEED)
    plan_path = campaign_plan(tmp_path, positions=2, pushes=(-8.0, 0.0, 8.0), blocks=("block_10p0", "block_17p5"), name="mini")
    summary = campaign_flow(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints)
    assert summary.written == 2 * 2 * 3 and summary.failed == 0

    plan = load_campaign_plan(plan_path)
    for session, block in zip(summary.sessions, plan.blocks, strict=True):
        with SessionReader(session) as reader:
            refs = reader.sequences()
            assert len(refs) == 6
            for ref in refs:
                record = reader.read_sequence(ref.key)
                assert record.label.calibration_id == f"cal-{block.batch_id}-test"
                assert record.qc.passed
                # The probe pressed at the target force while the push fired.
                assert abs(record.contact_force_n - plan.contact.target_force_n).max() < plan.qc.max_force_error_n
                assert record.displacement_um.shape == (35, 250, 600)
    # What the twin's acquisition wrote round-trips through the dataset tools and the torch dataset.
    for session in summary.sessions:
        assert check_session(session).ok
        assert export_uff(session, tmp_path / f"{Path(session).stem}.uff")
        with SessionReader(session) as reader:
            refs = reader.sequences()
        window, label = WindowDataset(refs, 17, normalisation="sequence")[0]
        assert tuple(window.shape) == (1, 35, 17, 17) and float(label) == pytest.approx(refs[0].label_e_kpa, rel=1e-6)
    # Safe state at the end: probe clear of the phantoms.
    with TwinControl(twin.endpoints.control) as control:
        state = control.state()
    assert state.probe_force_n == 0.0 and not state.protective_stopped

    # A rerun finds nothing left to do.
    again = campaign_flow(rig=rig_file(twin.host, SPEED), plan=plan_path, endpoints=twin.endpoints)
    assert again.written == 0 and again.skipped == 12
