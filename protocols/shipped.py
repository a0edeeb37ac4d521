"""The rig files and plans that ship with shearlab, found the same way in a checkout and an installed wheel.

setup.py installs ``rigs/`` and ``plans/`` as ``shearlab/rigs`` and ``shearlab/plans``: one level above
each package folder, as they stand in a checkout. A lab copies them (``shearlab init``) and edits the copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# protocols/ -> the checkout's root, or site-packages/shearlab in a wheel.
_ROOT = Path(__file__).resolve().parents[1]
ShippedFolder = Literal["rigs", "plans"]


def shipped_folder(folder: ShippedFolder) -> Path:
    """The folder of shipped rig files or plans."""
    return _ROOT / folder


def shipped_file(folder: ShippedFolder, name: str) -> Path:
    """A shipped file by name (``shipped_file("rigs", "twin.toml")``); ``FileNotFoundError`` names the
    files there are."""
    path = shipped_folder(folder) / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in shipped_folder(folder).glob("*.toml")))
        raise FileNotFoundError(f"no shipped {folder[:-1]} file {name!r}; shipped: {known}")
    return path
