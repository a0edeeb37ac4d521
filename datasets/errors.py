"""Errors about session files: each names the file, the sequence where there is one, and the cause.

``DataFileError`` (a ``ValueError``) is the base of every data-file error, so that command-line code
reports any of them the same way; the subclasses say which kind of problem it is so that callers can
decide what to do.
"""

from __future__ import annotations

from pathlib import Path


class DataFileError(ValueError):
    """A data file (a session, a split, a checkpoint) is missing, unreadable or not what it should be."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class SessionFileError(DataFileError):
    """A session file cannot be used as asked."""

    def __init__(self, path: Path | str, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(path, message if key is None else f"sequence {key}: {message}")
        self.message = message


class NotASessionFileError(SessionFileError):
    """Missing, not HDF5, or an HDF5 file that shearlab did not write."""


class SchemaVersionError(SessionFileError):
    """Written by a newer shearlab whose layout this version cannot read."""


class CorruptSessionError(SessionFileError):
    """Truncated, structurally broken, or a checksum does not match the data."""


class SessionConflictError(SessionFileError):
    """Resuming a file that belongs to another session, or appending a sequence twice."""


class DiskFullError(SessionFileError):
    """Not enough free space to write the next sequence; nothing was written. Free space, then rerun to resume."""


class SessionWriteError(SessionFileError):
    """A write to the session failed (a full disk, an I/O error): the sequences completed before it are safe,
    the one being written is redone when the session is resumed."""
