"""Output files of the commands: never one of their inputs, an existing one replaced only when asked,
and never half-written.

``check_output`` refuses, before any work, an output that is one of the command's inputs (by file
identity, so a second path or a hard link to the session counts) or that exists already without
``force``. ``atomic_output`` hands out a temporary path beside the output and renames it into place
only once it is complete, so a crash or a full disk leaves the old file (or nothing), never a torn one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputFileError(ValueError):
    """An output path the command must not write: it is an input, or it exists and ``--force`` was not given."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


def check_output(out: Path, *, inputs: Iterable[Path], force: bool) -> None:
    """Raise ``OutputFileError`` if ``out`` is one of ``inputs``, or exists and ``force`` is not set."""
    for source in inputs:
        if _same_file(out, source):
            raise OutputFileError(out, f"is an input of this command ({source}); writing it would destroy it: choose another output")
    if out.is_dir():
        raise OutputFileError(out, "is a folder: give a file name")
    if out.exists() and not force:
        raise OutputFileError(out, "exists already: choose another name, or give --force to replace it")


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out``; renamed to ``out`` when the block succeeds, removed when it fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial{out.suffix}")
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
