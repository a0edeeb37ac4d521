"""``shearlab demo --estimate``: every stage with its work, a positive time and where its rate comes from."""

from __future__ import annotations

import json

from shearlab.orchestrator.demo import SCALES
from shearlab.orchestrator.estimate import CYLINDER_OVERHEAD_S, estimate_demo


def test_the_estimate_names_every_stage_and_scales_with_the_work() -> None:
    quick = {s.stage: s for s in estimate_demo("quick")}
    assert list(quick) == ["calibration", "acquisition", "training", "evaluation"]
    assert all(s.seconds > 0 and s.basis for s in quick.values())
    # Calibration: every cylinder costs at least its fixed share; paper scale indents 8 per batch, quick 3.
    batches = int(quick["calibration"].work.split()[0])
    assert quick["calibration"].seconds > batches * SCALES["quick"].cylinders * CYLINDER_OVERHEAD_S
    two = {s.stage: s for s in estimate_demo("quick", twins=2)}
    assert two["acquisition"].seconds < quick["acquisition"].seconds


def test_the_cli_prints_the_estimate_without_running_anything(shearlab_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = shearlab_cli("demo", "--scale", "quick", "--estimate", "--out", str(tmp_path / "demo"), "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [row["stage"] for row in report["stages"]] == ["calibration", "acquisition", "training", "evaluation"]
    assert not (tmp_path / "demo").exists()
