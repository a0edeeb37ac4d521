"""An HTML report with the figures and metric tables, plus ``metrics.json``."""

from __future__ import annotations

import html
import json
import math
import shutil
from pathlib import Path
from typing import Any


def _json_safe(value: Any) -> Any:
    # JSON has no NaN: a missing number is written as null.
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item()) if getattr(value, "ndim", 0) == 0 else _json_safe(value.tolist())
    return value


def _flatten(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name} / "))
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "missing" if value is None or not math.isfinite(value) else f"{value:.4g}"
    if value is None:
        return "missing"
    return html.escape(json.dumps(value) if isinstance(value, list) else str(value))


def write_report(out_dir: Path, metrics: dict, figures: list[Path]) -> Path:
    """Write ``out_dir/metrics.json`` and ``out_dir/report.html`` (figures copied next to it); return the HTML path.

    ``metrics`` is a nested dict of numbers, strings and lists; each top-level key becomes a table. NaN is
    written as ``null`` in JSON and as "missing" in the HTML.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = _json_safe(metrics)
    (out_dir / "metrics.json").write_text(json.dumps(safe, indent=2, sort_keys=True), encoding="utf-8")
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>shearlab report</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}img{max-width:100%}</style>",
             "</head><body><h1>shearlab evaluation report</h1>"]
    for section, content in safe.items():
        parts.append(f"<h2>{html.escape(str(section))}</h2><table><tr><th>metric</th><th>value</th></tr>")
        rows = _flatten(content) if isinstance(content, dict) else [(str(section), content)]
        parts.extend(f"<tr><td>{html.escape(name)}</td><td>{_cell(value)}</td></tr>" for name, value in rows)
        parts.append("</table>")
    if figures:
        parts.append("<h2>Figures</h2>")
    for figure in figures:
        figure = Path(figure)
        target = out_dir / figure.name
        if figure.resolve() != target.resolve():
            shutil.copyfile(figure, target)
        parts.append(f"<figure><img src='{html.escape(figure.name)}' alt='{html.escape(figure.stem)}'>"
                     f"<figcaption>{html.escape(figure.stem)}</figcaption></figure>")
    parts.append("</body></html>")
    path = out_dir / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
