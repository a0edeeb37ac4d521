"""The README's demo numbers come from a run: `make readme-results` replaces the marked block, nothing else."""

import json
from pathlib import Path

import pytest

from shearlab.orchestrator.readme_results import BEGIN, END, update_readme


def _demo_run(folder: Path, mae_kpa: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.md").write_text(f"| method | MAE |\n| --- | --- |\n| CNN | {mae_kpa:.2f} kPa |\n", encoding="utf-8")
    (folder / "demo_run.json").write_text(json.dumps({
        "command": "shearlab demo --scale quick", "machine": "2 CPU cores", "wall_s": 754.4,
        "stages_s": {"calibration": 90.0, "training": 400.0}, "load_average": 1.9}), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps({"inclusions": {"inclusions_a": {}}}), encoding="utf-8")
    for name in ("mae_vs_stiffness.png", "inclusion_inclusions_a.png"):
        (folder / name).write_bytes(b"\x89PNG " + name.encode())
    return folder


def test_the_block_between_the_markers_is_the_latest_runs_and_the_rest_is_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nBefore.\n\n{BEGIN}\nold numbers\n{END}\n\nAfter.\n", encoding="utf-8")
    figures = tmp_path / "docs" / "figures"
    update_readme(readme, _demo_run(tmp_path / "run1", 7.61), figures)
    update_readme(readme, _demo_run(tmp_path / "run2", 8.53), figures)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n")
    assert text.count(BEGIN) == 1 and "old numbers" not in text and "7.61" not in text
    assert "| CNN | 8.53 kPa |" in text and "12 min 34 s wall (calibration 90 s, training 400 s)" in text
    # Only figures the run made are shown, copied beside the README.
    assert "![inclusion inclusions a](docs/figures/inclusion_inclusions_a.png)" in text
    assert "dice_inclusions_a" not in text and "maps_mean" not in text
    assert (figures / "inclusion_inclusions_a.png").read_bytes() == b"\x89PNG inclusion_inclusions_a.png"


def test_a_readme_without_markers_is_refused_unchanged(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no demo-results markers"):
        update_readme(readme, _demo_run(tmp_path / "run", 8.0), tmp_path / "figures")
    assert readme.read_text(encoding="utf-8") == "# Title\n"
