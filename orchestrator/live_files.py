"""Where a campaign's live maps lie beside its session files, as the campaign writes them and the live page reads them.

For a session ``DIR/NAME.h5`` the map of probe position ``k`` is ``DIR/NAME.live/p{k:03d}.png`` (the
modulus beside its sigma) and ``p{k:03d}.json`` (a ``PositionMap``: per push the median modulus and
sigma over the ROI, the strips the adaptive strategy reads, the model, and when). Each file is written
under a temporary name and renamed into place, so a reader sees a whole file or none; the JSON is
written last, so a map whose JSON exists has its PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from shearlab.protocols.strict_model import StrictModel


class PushMap(StrictModel):
    """One push of a mapped position: its ROI figures and its QC."""

    push: int
    lateral_mm: float
    median_kpa: float | None
    median_sigma_kpa: float | None
    # Median calibrated relative sigma over the ROI: what the QC's uncertainty gate compares.
    roi_sigma: float | None
    qc_passed: bool
    qc_reason: str = ""
    contact_force_n: float | None = None


class PositionMap(StrictModel):
    """What the live page and the adaptive strategy read of one mapped position."""

    session_id: str
    position: int
    x_mm: float
    y_mm: float
    pushes: list[PushMap]
    # Lateral strips of the compounded sigma map: centres relative to the probe (mm) and median sigma.
    strip_offsets_mm: list[float]
    strip_sigma: list[float | None]
    checkpoint: str
    last_push_at: str
    mapped_at: str


def live_dir(session_path: Path) -> Path:
    return Path(session_path).with_suffix(".live")


def map_png(session_path: Path, position: int) -> Path:
    return live_dir(session_path) / f"p{position:03d}.png"


def _map_json(session_path: Path, position: int) -> Path:
    return live_dir(session_path) / f"p{position:03d}.json"


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_position_map(session_path: Path, position_map: PositionMap, png: bytes) -> Path:
    """The position's PNG, then its JSON; returns the JSON's path."""
    _replace(map_png(session_path, position_map.position), png)
    path = _map_json(session_path, position_map.position)
    _replace(path, position_map.model_dump_json(indent=1).encode())
    return path


def read_position_maps(session_path: Path) -> dict[int, PositionMap]:
    """Every whole position map of a session by position (none if it was never mapped)."""
    found = {}
    for path in sorted(live_dir(session_path).glob("p[0-9][0-9][0-9].json")):
        try:
            position_map = PositionMap.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            continue  # a map of an older format, or one a crash cut short: the page shows none for it
        found[position_map.position] = position_map
    return found


__all__ = ["PositionMap", "PushMap", "live_dir", "map_png", "read_position_maps", "write_position_map"]
