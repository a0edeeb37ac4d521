"""Adaptive versus random probe positions on an inclusion phantom: how many positions each needs.

Both strategies acquire the same budget of positions on the circular-inclusion phantom of the default
world (two 15 % inclusions in 7.5 % gel), on the simulated rig (``rigs/sim.toml``: the twin's models in
this process), from the same seeds. The quick demo's block-trained net is fine-tuned (the study's
fine-tuning: windows labelled by the phantom's truth map, ``training.truth_windows``) on the first ``n``
positions of each campaign, for each budget ``n``, and scored on the same held-out positions (not in any
campaign: one on each inclusion, one on background): pixelwise MAE against the truth map over the
inclusion field and Dice at the mid-modulus threshold, the study's inclusion figures (``evaluate_inclusion``).

The adaptive campaign places each position by the demo net's calibrated sigma (``protocols.adaptive``); the
random one draws them as the paper does. Results (``results.json`` and a Markdown table) give the mean
over seeds per budget and the number of positions each strategy needs to reach the error random reaches
with its whole budget.

Run: ``.venv/bin/python benchmarks/bench_adaptive.py --demo out/demo [--out out/bench-adaptive]
[--positions 6] [--budgets 1 2 4 6] [--seeds 1 2 3] [--pushes 5]``; campaigns and fine-tuned nets are
kept and reused when the script is run again. ``--summary-of out/bench-adaptive/results.json`` prints the
table of a finished run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parents[1]
PHANTOM = "inclusion_circular"
# Held-out probe centres, mm from the phantom's centre: on the small inclusion, on the large one's flank,
# and on background between them; at y offsets no campaign position shares.
HELD_OUT_MM = ((-7.0, -13.0), (21.0, 9.0), (7.0, 21.0))


def _plans(demo: Path, out: Path, pushes: int) -> tuple[Any, Any, Any]:
    from shearlab.protocols.plans import load_campaign_plan, load_training_plan
    from shearlab.protocols.sequences import inclusion_pushes

    inclusions = load_campaign_plan(demo / "plans" / "inclusions.toml")
    block = next(b for b in inclusions.blocks if b.name == PHANTOM)
    lateral = tuple(round(p.lateral_mm, 3) for p in inclusion_pushes(pushes))
    base = inclusions.model_copy(update={"blocks": (block.model_copy(update={"positions_mm": None}),), "push_lateral_mm": lateral,
                                         "calibration_dir": (demo / "calibration").resolve()})
    training = load_training_plan(demo / "plans" / "training.toml").model_copy(update={"out_dir": out / "nets"})
    return base, block, training


def _campaign(plan: Any, rig: Path) -> Path:
    from shearlab.orchestrator.flows.acquisition import campaign_flow

    summary = campaign_flow(rig=rig, plan=plan)
    return Path(summary.sessions[0])


def _refs(session: Path, positions: range | None = None) -> list[Any]:
    from shearlab.datasets.reader import SessionReader

    with SessionReader(session) as reader:
        refs = [r for r in reader.sequences() if r.has_displacement and not r.failed]
    return [r for r in refs if positions is None or r.position_index in positions]


def _positions_mm(session: Path, block: Any) -> list[list[float]]:
    """Each position's probe centre relative to the phantom's centre, mm, in acquisition order."""
    from shearlab.datasets.reader import SessionReader

    with SessionReader(session) as reader:
        first = {r.position_index: r.key for r in reversed(reader.sequences())}
        poses = {k: reader.read_status(key).probe_pose for k, key in first.items()}
    return [[round(poses[k][0] * 1e3 - block.x_mm, 1), round(poses[k][1] * 1e3 - block.y_mm, 1)] for k in sorted(poses)]


def _score(checkpoint: Path, held_out: Path, training: Any, out: Path) -> dict[str, float]:
    from shearlab.orchestrator.flows.training import cnn_estimator, modulus_of_batch_kpa
    from shearlab.training.evaluation import evaluate_inclusion

    cnn = cnn_estimator(checkpoint, training)
    maes, dices = [], []
    refs = _refs(held_out)
    for position in sorted({r.position_index for r in refs}):
        at = [r for r in refs if r.position_index == position]
        result = evaluate_inclusion([cnn], at, modulus_of_batch=modulus_of_batch_kpa(training), out_dir=out / "figures",
                                    name=f"{checkpoint.stem}_p{position}")
        m, share = result.metrics["methods"]["cnn"], result.metrics["inclusion_fraction"]
        inside, outside = m["mae_inclusion_kpa"], m["mae_background_kpa"]
        maes.append(outside if inside is None else share * inside + (1 - share) * outside)
        dices.append(m["dice"])
    return {"mae_kpa": float(np.mean(maes)), "dice": float(np.mean(dices))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=None, help="a quick demo's output folder (its net, plans and calibration)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-adaptive"))
    parser.add_argument("--positions", type=int, default=6)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 4, 6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pushes", type=int, default=5)
    parser.add_argument("--summary-of", type=Path, default=None, help="print the table of a stored results.json and stop")
    args = parser.parse_args()
    if args.summary_of is not None:
        stored = json.loads(args.summary_of.read_text())
        print(table(summarise(stored, stored["settings"]["budgets"])))
        return
    if args.demo is None:
        parser.error("--demo is required (unless --summary-of)")
    from shearlab.orchestrator.flows.training import fine_tune_on_inclusions

    out = args.out.resolve()
    rig = ROOT / "rigs" / "sim.toml"
    base_net = sorted(args.demo.glob("cnn_w*_seed0.pt"))[0].resolve()
    plan, block, training = _plans(args.demo.resolve(), out, args.pushes)
    started = time.perf_counter()
    held_out_plan = plan.model_copy(update={
        "name": "heldout", "out_dir": out / "heldout", "n_positions": len(HELD_OUT_MM),
        "blocks": (block.model_copy(update={"positions_mm": tuple((block.x_mm + dx, block.y_mm + dy) for dx, dy in HELD_OUT_MM)}),)})
    held_out = _campaign(held_out_plan, rig)
    results: dict[str, Any] = {"base": _score(base_net, held_out, training, out), "runs": {}}
    timings: dict[str, float] = {}
    for seed in args.seeds:
        for strategy in ("random", "adaptive"):
            name = f"{strategy}-s{seed}"
            t0 = time.perf_counter()
            campaign = plan.model_copy(update={"name": name, "seed": seed, "n_positions": args.positions, "out_dir": out / name,
                                               "strategy": strategy, "checkpoint": base_net if strategy == "adaptive" else None,
                                               "qc": plan.qc.model_copy(update={"uncertainty_gate": False})})
            session = _campaign(campaign, rig)
            timings[f"{name} campaign_s"] = time.perf_counter() - t0
            run = results["runs"].setdefault(name, {"strategy": strategy, "seed": seed, "budgets": {}})
            run["positions_mm"] = _positions_mm(session, block)
            for n in args.budgets:
                # Resumes (or reuses) the fine-tuned net of an earlier run of this script.
                tuned = fine_tune_on_inclusions(training, base_net, f"{name}_n{n}", _refs(session, range(n)))
                run["budgets"][str(n)] = _score(tuned, held_out, training, out)
                print(name, n, run["budgets"][str(n)], flush=True)
    results["settings"] = {"phantom": PHANTOM, "positions": args.positions, "budgets": args.budgets, "seeds": args.seeds,
                           "pushes": args.pushes, "held_out_mm": HELD_OUT_MM, "base_net": str(base_net),
                           "fine_tune_epochs": training.fine_tune_epochs, "machine": f"{os.cpu_count()} CPU cores",
                           "load_average": os.getloadavg()[0], "wall_s": time.perf_counter() - started, **timings}
    results["summary"] = summarise(results, args.budgets)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results["summary"]))


def summarise(results: dict[str, Any], budgets: list[int]) -> dict[str, Any]:
    """Mean over seeds per strategy and budget, and the positions each needs to reach random's final error."""
    curves: dict[str, dict[str, list[float]]] = {}
    for strategy in ("random", "adaptive"):
        runs = [r for r in results["runs"].values() if r["strategy"] == strategy]
        curves[strategy] = {key: [float(np.mean([r["budgets"][str(n)][key] for r in runs])) for n in budgets]
                            for key in ("mae_kpa", "dice")}
    def needed(key: str, sign: int) -> tuple[float, dict[str, int | None]]:
        """Random's figure at its whole budget, and the first budget at which each strategy reaches it
        (``sign`` -1: lower is better, +1: higher is better)."""
        target = curves["random"][key][-1]
        return target, {s: next((n for n, v in zip(budgets, c[key], strict=True) if sign * (v - target) >= 0), None)
                        for s, c in curves.items()}

    target, by_mae = needed("mae_kpa", -1)
    target_dice, by_dice = needed("dice", +1)
    return {"budgets": budgets, "curves": curves, "target_mae_kpa": target, "positions_needed": by_mae,
            "target_dice": target_dice, "positions_needed_dice": by_dice, "base": results["base"]}


def table(summary: dict[str, Any]) -> str:
    lines = ["| positions | random MAE (kPa) | adaptive MAE (kPa) | random Dice | adaptive Dice |", "| --- | --- | --- | --- | --- |",
             f"| 0 (block-trained net) | {summary['base']['mae_kpa']:.2f} | {summary['base']['mae_kpa']:.2f} | "
             f"{summary['base']['dice']:.2f} | {summary['base']['dice']:.2f} |"]
    for i, n in enumerate(summary["budgets"]):
        r, a = summary["curves"]["random"], summary["curves"]["adaptive"]
        lines.append(f"| {n} | {r['mae_kpa'][i]:.2f} | {a['mae_kpa'][i]:.2f} | {r['dice'][i]:.2f} | {a['dice'][i]:.2f} |")
    last = summary["budgets"][-1]
    for what, target, needed in (("MAE", f"{summary['target_mae_kpa']:.2f} kPa", summary["positions_needed"]),
                                 ("Dice", f"{summary['target_dice']:.2f}", summary["positions_needed_dice"])):
        lines.append(f"\nPositions to reach random's {what} at {last} positions ({target}): "
                     f"random {needed['random']}, adaptive {needed['adaptive'] or f'more than {last}'}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
