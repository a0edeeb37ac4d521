"""Session files: HDF5 layout, crash-safe writer, reader, checks, catalogue, UFF export, training data.

The training side (``WindowDataset``, ``AugmentConfig``) is imported on first use, so that writers
and readers (the acquisition flows, a killed-and-resumed writer process) do not pay for importing
torch and scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.errors import (
    CorruptSessionError,
    NotASessionFileError,
    SchemaVersionError,
    SessionConflictError,
    SessionFileError,
)
from shearlab.datasets.integrity import CheckReport, Problem, check_session
from shearlab.datasets.layout import SCHEMA_VERSION
from shearlab.datasets.reader import SequenceRef, SessionReader, read_displacement
from shearlab.datasets.records import (
    CalibrationFit,
    IndentationRecord,
    Label,
    QcResult,
    SequenceRecord,
    SessionInfo,
    sequence_key,
)
from shearlab.datasets.splits import Split, cv_splits, loco_splits
from shearlab.datasets.uff import export_uff
from shearlab.datasets.writer import SessionWriter

_LAZY = {"WindowDataset": "windows", "WindowPlacement": "windows", "WINDOW_SIZES_PX": "windows",
         "normalise_volume": "windows", "AugmentConfig": "augment"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"shearlab.datasets.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'shearlab.datasets' has no attribute {name!r}")


__all__ = [
    "SCHEMA_VERSION",
    "WINDOW_SIZES_PX",
    "AugmentConfig",
    "CalibrationFit",
    "Catalogue",
    "CheckReport",
    "CorruptSessionError",
    "IndentationRecord",
    "Label",
    "NotASessionFileError",
    "Problem",
    "QcResult",
    "SchemaVersionError",
    "SequenceRecord",
    "SequenceRef",
    "SessionConflictError",
    "SessionFileError",
    "SessionInfo",
    "SessionReader",
    "SessionWriter",
    "Split",
    "WindowDataset",
    "WindowPlacement",
    "check_session",
    "cv_splits",
    "export_uff",
    "loco_splits",
    "normalise_volume",
    "read_displacement",
    "sequence_key",
]
