"""Twin rig files on a loopback address of the test's choosing."""

from __future__ import annotations

import re
from pathlib import Path

RIGS = Path(__file__).resolve().parents[1] / "rigs"


def twin_rig(folder: Path, host: str, *, speed: float | None = None, base: str = "twin.toml", extra: str = "") -> Path:
    """``rigs/<base>`` with its twin on ``host`` (and at ``speed``), written into ``folder``."""
    text = re.sub(r'^host = ".*"$', f'host = "{host}"', (RIGS / base).read_text(), count=1, flags=re.MULTILINE)
    if speed is not None:
        text = re.sub(r"^speed = .*$", f"speed = {speed}", text, count=1, flags=re.MULTILINE)
    path = folder / f"{Path(base).stem}_{host}.toml"
    path.write_text(text + extra)
    return path
