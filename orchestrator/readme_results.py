"""The README's demo results, regenerated from a demo run: never typed by hand.

``python -m shearlab.orchestrator.readme_results out/demo README.md docs/figures`` (``make readme-results``)
replaces the block between the two markers in the README with the run's ``summary.md`` (the report's
opening table and findings), its wall time and machine, and the figures it copies into ``docs/figures``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

BEGIN = "<!-- demo-results:begin (make readme-results) -->"
END = "<!-- demo-results:end -->"
# The figures the README shows, as the report names them; inclusion figures follow their phantoms.
FIGURES = ("mae_vs_stiffness.png", "mae_vs_push.png", "maps_mean.png", "reliability.png", "maps_sigma.png")


def results_block(demo_out: Path, figures_dir: Path, readme: Path) -> str:
    """The Markdown between the markers for the run in ``demo_out``; copies its figures."""
    summary = (demo_out / "summary.md").read_text(encoding="utf-8").strip()
    run = json.loads((demo_out / "demo_run.json").read_text(encoding="utf-8"))
    metrics = json.loads((demo_out / "metrics.json").read_text(encoding="utf-8"))
    figures_dir.mkdir(parents=True, exist_ok=True)
    names = list(FIGURES) + [f"{kind}_{session}.png" for session in metrics.get("inclusions", {}) for kind in ("inclusion", "dice")]
    shown = []
    for name in names:
        source = demo_out / name
        if source.exists():
            shutil.copyfile(source, figures_dir / name)
            shown.append(f"![{name.removesuffix('.png').replace('_', ' ')}]({(figures_dir / name).relative_to(readme.parent)})")
    minutes, seconds = divmod(round(run["wall_s"]), 60)
    lines = [BEGIN, "",
             f"From `{run['command']}` on {run['machine']}: {minutes} min {seconds:02d} s wall "
             f"({', '.join(f'{stage} {s:.0f} s' for stage, s in run['stages_s'].items())}), "
             f"load average {run['load_average']:.1f} at the end. The full report: `report.html` in the demo's folder "
             f"(`make demo`: `out/demo/report.html`).",
             "", summary, "", *shown, "", END]
    return "\n".join(lines)


def update_readme(readme: Path, demo_out: Path, figures_dir: Path) -> None:
    """Replace the README's demo-results block with the run in ``demo_out``."""
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme}: no demo-results markers ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + results_block(demo_out, figures_dir, readme) + tail, encoding="utf-8")


def main() -> None:
    demo_out, readme, figures_dir = (Path(arg) for arg in sys.argv[1:4])
    update_readme(readme, demo_out, figures_dir)


if __name__ == "__main__":
    main()
