"""Fine-tuning variants for the inclusion maps, on the sessions and nets of finished demo runs.

For each demo run given, each inclusion phantom and each training seed, the run's block-trained net is
fine-tuned as the study does (``orchestrator.flows.training.fine_tune_on_inclusions``: windows of the
phantom's other positions labelled by its truth map) with the settings asked for, and scored on the
evaluated position as the report scores it (``evaluate_inclusion``: MAE inside and outside the inclusion,
Dice at the mid-modulus threshold). Besides each seed, the mean of the seeds' maps (an ensemble), and the
signed error inside and outside the inclusion on the evaluated position and on the tuning position, which
says whether a variant under-fits (biased on its own training data too) or fails to generalise.
``--epochs 0`` scores the block-trained nets without fine-tuning.

Run: ``.venv/bin/python benchmarks/study_fine_tune.py --demo out/demo [--demo out/demo2] [--epochs 20]
[--lr 1e-3] [--share 0.5] [--out out/study-fine-tune]``. The same net, data and settings give the same figures
(training is deterministic on the CPU); nets already fine-tuned under ``--out`` are reused.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shearlab.datasets import Catalogue, SequenceRef
from shearlab.orchestrator.flows.training import cnn_estimator, fine_tune_on_inclusions, modulus_of_batch_kpa
from shearlab.protocols.plans import TrainingPlan, load_training_plan
from shearlab.training.estimators import CnnEstimator, SequenceView
from shearlab.training.evaluation import compound_maps, evaluate_inclusion, inclusion_region, session_truth_map


@dataclass
class MappedOnce:
    """A net whose map of each sequence and region is computed once: every variant is scored twice (the
    report's figures, then the signed errors), and the seeds' maps again in their mean."""

    net: CnnEstimator
    key: str = "cnn"
    label: str = field(init=False)
    _maps: dict[tuple[str, str, int, int, int, int], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.net.label

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        where = (str(view.ref.path), view.ref.key, rows.start, rows.stop, cols.start, cols.stop)
        if where not in self._maps:
            self._maps[where] = self.net.estimate(view, rows, cols)
        return self._maps[where]


@dataclass
class MeanOfNets:
    """The mean of several nets' maps: the seeds' fine-tuned nets as one ensemble."""

    members: Sequence[MappedOnce]
    key: str = "cnn"
    label: str = "CNN, mean of the seeds' maps"

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        return np.mean([m.estimate(view, rows, cols) for m in self.members], axis=0)


def signed_errors(estimator: MappedOnce | MeanOfNets, refs: list[SequenceRef], plan: TrainingPlan) -> dict[str, float]:
    """Mean signed error (kPa) inside and outside the inclusion of one position's compounded map."""
    grid, truth_full, mask_full = session_truth_map(refs[0], modulus_of_batch_kpa(plan))
    rows, cols = inclusion_region(grid)
    truth, mask = truth_full[rows, cols], mask_full[rows, cols]
    error = compound_maps([estimator.estimate(SequenceView.read(r), rows, cols) for r in refs]) - truth
    return {"bias_inside_kpa": float(np.nanmean(error[mask])), "bias_outside_kpa": float(np.nanmean(error[~mask]))}


def study_run(demo: Path, args: argparse.Namespace) -> dict[str, Any]:
    plan = load_training_plan(demo / "plans" / "training.toml")
    out = args.out / f"{demo.name}-e{args.epochs}-lr{args.lr:g}-s{args.share:g}"
    plan = plan.model_copy(update={"out_dir": out, "fine_tune_epochs": max(args.epochs, 1), "fine_tune_lr": args.lr,
                                   "fine_tune_inclusion_share": args.share})
    out.mkdir(parents=True, exist_ok=True)
    bases = sorted(demo.glob(f"cnn_w{plan.window_px}_cv*_seed[0-9].pt"))
    if not bases:
        raise SystemExit(f"{demo}: no block-trained nets of the CV split (cnn_w{plan.window_px}_cv*_seed<N>.pt)")
    refs = Catalogue(plan.sessions_dir).query(kind="inclusion")
    results: dict[str, Any] = {}
    for session in sorted({r.session_id for r in refs}):
        evaluated = [r for r in refs if r.session_id == session and r.position_index == 0]
        tuning = [r for r in refs if r.session_id == session and r.position_index != 0]
        nets = [MappedOnce(cnn_estimator(base if args.epochs == 0 else fine_tune_on_inclusions(plan, base, session, tuning), plan))
                for base in bases]
        variants: dict[str, MappedOnce | MeanOfNets] = {base.stem: net for base, net in zip(bases, nets, strict=True)}
        variants["mean of seeds"] = MeanOfNets(nets)
        results[session] = {}
        for name, estimator in variants.items():
            scored = evaluate_inclusion([estimator], evaluated, modulus_of_batch=modulus_of_batch_kpa(plan),
                                        out_dir=out / "figures", name=f"{session}_{name.replace(' ', '_')}").metrics
            cnn = scored["methods"]["cnn"]
            results[session][name] = {
                "mae_inside_kpa": cnn["mae_inclusion_kpa"], "mae_outside_kpa": cnn["mae_background_kpa"], "dice": cnn["dice"],
                **signed_errors(estimator, evaluated, plan),
                **{f"tuning_position_{k}": v for k, v in signed_errors(estimator, tuning, plan).items()}}
            row = results[session][name]
            print(f"{demo.name} {session} {name}: MAE inside {row['mae_inside_kpa']:.2f}, outside "
                  f"{row['mae_outside_kpa']:.2f} kPa, Dice {row['dice']:.3f}; bias inside {row['bias_inside_kpa']:+.1f}, "
                  f"outside {row['bias_outside_kpa']:+.1f} (tuning position {row['tuning_position_bias_inside_kpa']:+.1f}, "
                  f"{row['tuning_position_bias_outside_kpa']:+.1f})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", type=Path, action="append", required=True, help="a finished demo run's folder")
    parser.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (0: the block-trained nets as they are)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--share", type=float, default=0.5, help="share of windows centred on the inclusion")
    parser.add_argument("--out", type=Path, default=Path("out/study-fine-tune"))
    args = parser.parse_args()
    results = {str(demo): study_run(demo, args) for demo in args.demo}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"results-e{args.epochs}-lr{args.lr:g}-s{args.share:g}.json"
    path.write_text(json.dumps({"settings": {"epochs": args.epochs, "lr": args.lr, "share": args.share}, "runs": results},
                               indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
