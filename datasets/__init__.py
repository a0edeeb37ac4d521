"""Session files, without torch: HDF5 layout, crash-safe writer, reader, checks, catalogue, splits,
fingerprints, UFF export. Training windows over these files live in ``shearlab.training.windows``."""

from __future__ import annotations

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.errors import (
    CorruptSessionError,
    NotASessionFileError,
    SchemaVersionError,
    SessionConflictError,
    SessionFileError,
)
from shearlab.datasets.fingerprint import dataset_fingerprint
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

__all__ = [
    "SCHEMA_VERSION",
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
    "check_session",
    "cv_splits",
    "dataset_fingerprint",
    "export_uff",
    "loco_splits",
    "read_displacement",
    "sequence_key",
]
