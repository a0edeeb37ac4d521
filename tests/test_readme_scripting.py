"""README "Scripting a session" runs as written, and the Prefect UI shows its runs as the README says:
named after what they do, tagged with rig, plan and batch, absolute paths, the campaign's artifacts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def scripting_section() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Scripting a session", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return code


def test_the_readme_script_runs_and_the_ui_reads_well(tmp_path: Path, prefect_harness, capsys: pytest.CaptureFixture[str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterTags

    (tmp_path / "plans").mkdir()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(scripting_section(), "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    assert "4 sequences, QC pass rate 100%" in printed and "cal-B1-10.0-" in printed

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["plan:two-positions"])))
        assert run.name.startswith("campaign two-positions 20")
        assert {"rig:sim", "plan:two-positions", "batch:B1-10.0"} <= set(run.tags)
        assert Path(run.parameters["rig"]).is_absolute()
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}))
        assert sorted(t.name for t in tasks) == ["B1-10.0 position 0", "B1-10.0 position 1"]
        assert all("batch:B1-10.0" in t.tags for t in tasks)
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["campaign-two-positions", "campaign-two-positions-positions"])))}
        summary = str(artifacts["campaign-two-positions"].data)
        assert "QC pass rate: 100.0%" in summary and "re-acquisitions: 0" in summary and "cal-B1-10.0-" in summary
        assert str(tmp_path / "out" / "sessions") in summary
        assert "B1-10.0" in str(artifacts["campaign-two-positions-positions"].data)
        (calibration,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["plan:one-batch"])))
        assert calibration.name.startswith("calibration one-batch 20")
