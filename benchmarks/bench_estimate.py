"""``shearlab demo --estimate`` against measured runs (issue 15): is each stage's estimate within 1.5x?

Prints, in one process on this machine:

* the paper scale's estimate of every stage, then a measured run of its first stage (the calibration of
  every batch at paper scale: 8 cylinders each, on the indentation rig's twin) and the ratio
  measured / estimated;
* with ``--demo DIR``: the quick scale's estimate next to the stage times that demo run recorded
  (``demo_run.json``), stage by stage. The estimate measures the training step and the dense rate now, so
  run it on a quiet machine, as the demo was.

Run: ``.venv/bin/python benchmarks/bench_estimate.py [--demo out/demo] [--skip-paper-calibration]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# The estimate's stages and the demo_run.json stages they correspond to (the demo's "training" stage
# trains, evaluates and writes the report).
_DEMO_STAGES = {("calibration",): ("calibration",), ("acquisition",): ("blocks", "inclusions"),
                ("training", "evaluation"): ("training",)}


def _line(stage: str, estimated_s: float, measured_s: float) -> str:
    ratio = measured_s / estimated_s
    verdict = "within 1.5x" if 1 / 1.5 <= ratio <= 1.5 else "OUTSIDE 1.5x"
    return f"{stage:<24} estimated {estimated_s:8.1f} s  measured {measured_s:8.1f} s  ratio {ratio:5.2f} ({verdict})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=None, help="a quick demo's folder (its demo_run.json)")
    parser.add_argument("--skip-paper-calibration", action="store_true")
    args = parser.parse_args()
    from shearlab.orchestrator.demo import SCALES, calibrate, write_plans
    from shearlab.orchestrator.estimate import estimate_demo

    print(f"{os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f}")
    if args.demo is not None:
        run = json.loads((args.demo / "demo_run.json").read_text())
        estimates = {e.stage: e for e in estimate_demo("quick")}
        print(f"quick scale, estimated now against {args.demo / 'demo_run.json'} (load at its end {run['load_average']:.1f}):")
        for stages, recorded in _DEMO_STAGES.items():
            print("  " + _line(" + ".join(stages), sum(estimates[s].seconds for s in stages),
                               sum(run["stages_s"].get(s, 0.0) for s in recorded)))
    if args.skip_paper_calibration:
        return
    paper = {e.stage: e for e in estimate_demo("paper")}
    for e in paper.values():
        print(f"paper scale estimate, {e.stage}: {e.seconds:,.0f} s ({e.work}; {e.basis})")
    with tempfile.TemporaryDirectory() as tmp:
        plans = write_plans(Path(tmp), SCALES["paper"])
        started = time.perf_counter()
        calibrate(plans)
        measured = time.perf_counter() - started
    print("paper scale, first stage: " + _line("calibration", paper["calibration"].seconds, measured)
          + f" | load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
