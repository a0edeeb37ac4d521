"""The study's report: a results section a lab would share, rendered from ``metrics.json`` (Jinja2).

It opens with the answer (every method's error with its interval, then sentences generated from the
numbers: which method wins where and by how much), then the tables behind it (per concentration, per
push, the CNN's uncertainty, inclusions, leave-one-concentration-out, training seeds), the calibration the labels come from,
the paper's Figs. 6-10 with captions, and the provenance of every number. ``summary.md`` carries the
opening table and sentences for the README.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

TEMPLATES = Path(__file__).with_name("templates")
# Methods in the order the report lists them; the CNN first.
METHOD_ORDER = ("cnn", "ttp", "tof_robust", "tof_paper", "amplitude", "training_mean")


def json_safe(value: Any) -> Any:
    """JSON has no NaN or inf: a missing number is written as null."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return json_safe(value.item()) if getattr(value, "ndim", 0) == 0 else json_safe(value.tolist())
    return value


def kpa(interval: list[float | None] | None, *, stacked: bool = False) -> str:
    """``5.01 kPa [4.2, 5.9]`` from ``[value, low, high]``; a missing interval prints the value alone.

    ``stacked`` puts the interval on a line of its own (HTML), for tables with a column per method.
    """
    if not interval or interval[0] is None:
        return "n/a"
    value, low, high = (interval + [None, None])[:3]
    if low is None or high is None:
        return f"{value:.2f} kPa"
    if stacked:
        return markupsafe.Markup(f'{value:.2f} kPa<br><span class="ci">[{low:.2f}, {high:.2f}]</span>')
    return f"{value:.2f} kPa [{low:.2f}, {high:.2f}]"


def number(value: float | None, spec: str = ".2f") -> str:
    """A number in ``spec``, or "n/a" for a missing one (a constant estimate has no Pearson r)."""
    return "n/a" if value is None else format(value, spec)


def _ordered(methods: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    known = [key for key in METHOD_ORDER if key in methods]
    return [(key, methods[key]) for key in known + sorted(set(methods) - set(known))]


def _margin_sentence(label: str, margin: list[float | None]) -> str:
    value, low, high = margin
    if value is None:
        return f"The CNN could not be compared with {label}."
    if low is not None and high is not None and high < 0:
        return f"The CNN beats {label} by {-value:.2f} kPa (95 % interval {-high:.2f} to {-low:.2f})."
    if low is not None and high is not None and low > 0:
        return (f"{label[0].upper() + label[1:]} beats the CNN by {value:.2f} kPa (95 % interval {low:.2f} to {high:.2f}): "
                "the CNN does not reach it here.")
    return f"The CNN and {label} cannot be told apart (difference {value:+.2f} kPa, 95 % interval {low:.2f} to {high:.2f})."


def findings(metrics: dict[str, Any]) -> list[str]:
    """The sentences that open the report, generated from the metrics."""
    blocks = metrics["blocks"]
    methods = blocks["methods"]
    cnn = methods["cnn"]
    study = metrics.get("study", {})
    lines = [f"On {blocks['test_sequences']} held-out sequences ({blocks['test_positions']} probe positions), the CNN's "
             f"pixelwise MAE is {kpa(cnn['mae_kpa'])} (95 % interval over positions)."]
    best = min(methods.values(), key=lambda m: m["mae_kpa"][0] if m["mae_kpa"][0] is not None else math.inf)
    lines.append(f"Lowest error: {best['label']} ({kpa(best['mae_kpa'])}).")
    for key, method in _ordered(methods):
        if key != "cnn" and "cnn_margin_kpa" in method:
            lines.append(_margin_sentence(method["label"], method["cnn_margin_kpa"]))
    tof = methods.get("tof_robust") or methods.get("tof_paper")
    if tof is not None:
        lines.append(f"In the push zone (where a 65 px span straddles the push) the CNN's MAE is "
                     f"{kpa(cnn['mae_push_zone_kpa'])}, ToF's {kpa(tof['mae_push_zone_kpa'])}; outside it "
                     f"{kpa(cnn['mae_outside_push_zone_kpa'])} and {kpa(tof['mae_outside_push_zone_kpa'])}.")
    invariance = blocks.get("amplitude_invariance")
    if invariance:
        verdict = "holds" if invariance["holds"] else "does NOT hold"
        lines.append(f"Amplitude invariance {verdict}: scaling a sequence's displacement by "
                     f"{invariance['gains'][0]:g}-{invariance['gains'][-1]:g} moves the CNN's estimate by a median of "
                     f"{100 * invariance['median_relative_change']:.2g} % (limit {100 * invariance['limit']:g} %).")
    push = blocks.get("push_independence") or {}
    if push.get("ratio") is not None:
        if push["holds"]:
            lines.append(f"Push location: at the pushes it never trained on ({', '.join(map(str, push['unseen_pushes']))}) "
                         f"the CNN's MAE is {kpa(push['mae_unseen_pushes_kpa'])} against "
                         f"{kpa(push['mae_trained_pushes_kpa'])} at the others (ratio {push['ratio']:.2f}, limit "
                         f"{push['limit']:g}): independent of the push location.")
        else:
            lines.append(f"Push location: the CNN is NOT independent of it here. At the pushes it never trained on "
                         f"({', '.join(map(str, push['unseen_pushes']))}) its MAE is {kpa(push['mae_unseen_pushes_kpa'])} "
                         f"against {kpa(push['mae_trained_pushes_kpa'])} at the others (ratio {push['ratio']:.2f}, limit "
                         f"{push['limit']:g}): their windows lie farther from the push than any it trained on.")
    for name, inclusion in (metrics.get("inclusions") or {}).items():
        m = inclusion["methods"]
        parts = [f"{method['label']} {method['dice']:.2f}, {number(method['mae_inclusion_kpa'], '.1f')}/"
                 f"{number(method['mae_background_kpa'], '.1f')} kPa" for _key, method in _ordered(m)]
        lines.append(f"{name}: Dice at {inclusion['threshold_kpa']:.1f} kPa and MAE inside/outside the inclusion: "
                     f"{'; '.join(parts)}.")
    lines += uncertainty_findings(metrics.get("uncertainty"))
    seeds = metrics.get("seeds") or {}
    if len(seeds.get("cnn_mae_kpa", [])) > 1:
        values = seeds["cnn_mae_kpa"]
        lines.append(f"Over {len(values)} training seeds the CNN's MAE spans {min(values):.2f}-{max(values):.2f} kPa.")
    for row in metrics.get("loco") or []:
        lines.append(f"Left-out concentration {row['held_out_pct']:g} % (never seen in training): CNN "
                     f"{kpa(row['methods']['cnn']['mae_kpa'])}, ToF {kpa(row['methods']['tof_robust']['mae_kpa'])}.")
    if study.get("scale"):
        lines.append(f"Scale: {study['scale']}.")
    return lines


def uncertainty_findings(uncertainty: dict[str, Any] | None) -> list[str]:
    """The sentences on the CNN's uncertainty: coverage of its intervals and SweiNet's calibration error."""
    if not uncertainty:
        return []
    held = ", ".join(f"its {100 * row['level']:.0f} % intervals hold the label at {100 * row['coverage'][0]:.1f} % of pixels"
                     for row in uncertainty["levels"])
    sweinet = uncertainty.get("sweinet_error_pct")
    return [f"Uncertainty: {held} (calibration error at most {100 * uncertainty['max_error_68_95']:.1f} points at 68 and 95 %"
            + (f"; SweiNet's calibration error {sweinet:.1f} %, SweiNet itself 3.84 %" if sweinet is not None else "")
            + f"); the median sigma is {100 * uncertainty['median_relative_sigma']:.1f} % of the estimate."]


def summary_markdown(metrics: dict[str, Any]) -> str:
    """The opening of the report as Markdown: the method table and the findings."""
    blocks = metrics["blocks"]
    lines = ["| method | MAE, 95 % interval | in the push zone | outside it | Pearson r | failed | CNN margin |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for _key, m in _ordered(blocks["methods"]):
        margin = kpa(m["cnn_margin_kpa"]) if "cnn_margin_kpa" in m else "-"
        lines.append(f"| {m['label']} | {kpa(m['mae_kpa'])} | {kpa(m['mae_push_zone_kpa'])} | "
                     f"{kpa(m['mae_outside_push_zone_kpa'])} | {number(m['pearson'], '.3f')} | "
                     f"{100 * m['failed_fraction']:.1f} % | {margin} |")
    return "\n".join(lines + [""] + [f"- {line}" for line in findings(metrics)]) + "\n"


def write_report(out_dir: Path, metrics: dict[str, Any], figures: list[Path], *, captions: dict[str, str] | None = None) -> Path:
    """Write ``metrics.json``, ``summary.md`` and ``report.html`` (figures copied beside it) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = json_safe(metrics)
    (out_dir / "metrics.json").write_text(json.dumps(safe, indent=2, sort_keys=True), encoding="utf-8")
    (out_dir / "summary.md").write_text(summary_markdown(safe), encoding="utf-8")
    copied = []
    for figure in figures:
        target = out_dir / Path(figure).name
        if Path(figure).resolve() != target.resolve():
            shutil.copyfile(figure, target)
        copied.append({"file": target.name, "caption": (captions or {}).get(target.name, "")})
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["kpa"] = kpa
    environment.filters["number"] = number
    html = environment.get_template("report.html.j2").render(
        m=safe, methods=_ordered(safe["blocks"]["methods"]), findings=findings(safe), figures=copied)
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


__all__ = ["findings", "json_safe", "kpa", "number", "summary_markdown", "uncertainty_findings", "write_report"]
