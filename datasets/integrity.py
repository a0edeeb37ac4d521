"""Integrity checks of session files: structure, completion markers, uniqueness and checksums."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shearlab.datasets.errors import SessionFileError
from shearlab.datasets.reader import SessionReader


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: which sequence or run (``None`` for the file) and why."""

    where: str | None
    cause: str


@dataclass
class CheckReport:
    """Outcome of ``check_session``; ``ok`` when ``problems`` is empty.

    ``n_incomplete`` counts half-written rows a crashed writer left: not a problem (readers skip
    them and a resumed writer redoes them), but worth knowing.
    """

    path: Path
    problems: list[Problem] = field(default_factory=list)
    n_complete: int = 0
    n_failed: int = 0
    n_incomplete: int = 0
    n_indentation_runs: int = 0
    n_calibration_fits: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_session(path: Path | str) -> CheckReport:
    """Open ``path`` and verify every complete sequence, indentation run and calibration fit."""
    report = CheckReport(path=Path(path))
    try:
        reader = SessionReader(path)
    except SessionFileError as exc:
        report.problems.append(Problem(exc.key, exc.message))
        return report
    with reader:
        try:
            rows = reader.sequences(include_incomplete=True)
        except SessionFileError as exc:
            report.problems.append(Problem(exc.key, exc.message))
            return report
        complete = [r for r in rows if r.complete]
        report.n_complete = len(complete)
        report.n_failed = sum(r.failed for r in complete)
        report.n_incomplete = len(rows) - len(complete)
        for key, count in sorted(Counter(r.key for r in complete).items()):
            if count > 1:
                report.problems.append(Problem(str(key), f"complete {count} times (duplicate rows)"))
        for ref in complete:
            if not ref.failed and not ref.has_displacement:
                report.problems.append(Problem(ref.key, "complete and not failed, but has no displacement"))
            if ref.label_e_kpa is not None and not ref.label_calibration_id:
                report.problems.append(Problem(ref.key, "label without the calibration id that produced it"))
            try:
                reader.verify_sequence(ref.key)
            except SessionFileError as exc:
                report.problems.append(Problem(ref.key, exc.message))
        try:
            report.n_indentation_runs = len(reader.indentation_runs(verify=True))
        except SessionFileError as exc:
            report.problems.append(Problem(exc.key, exc.message))
        try:
            report.n_calibration_fits = len(reader.calibration_fits())
        except SessionFileError as exc:
            report.problems.append(Problem(exc.key, exc.message))
    return report


def session_files(path: Path | str) -> list[Path]:
    """``path`` itself if it is a file, else every ``*.h5`` below the folder, sorted."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*.h5") if p.is_file())
    return [path]
