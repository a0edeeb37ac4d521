"""A catalogue over a folder of session files, for queries across sessions.

Built by scanning the files' sequence tables (not their data), so it is cheap to rebuild; files that
cannot be read are listed in ``problems`` instead of stopping the scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from shearlab.datasets.errors import DataFileError, SessionFileError
from shearlab.datasets.integrity import session_files
from shearlab.datasets.reader import SequenceRef, SessionReader
from shearlab.datasets.records import SessionInfo


def _as_set(value: float | Iterable[float] | None) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return [float(value)]
    return [float(v) for v in value]


class Catalogue:
    """Every sequence of every session file under ``folder`` (recursively, ``*.h5``).

    ``refs`` lists complete sequences, ``sessions`` maps session id to its description and
    ``problems`` holds one ``SessionFileError`` per unreadable file.
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataFileError(self.folder, "not a folder of session files")
        self.refs: list[SequenceRef] = []
        self.sessions: dict[str, SessionInfo] = {}
        self.paths: dict[str, Path] = {}
        self.problems: list[SessionFileError] = []
        for path in session_files(self.folder):
            try:
                with SessionReader(path) as reader:
                    sid = reader.info.session_id
                    if sid in self.sessions:
                        raise SessionFileError(path, f"session id {sid!r} also used by {self.paths[sid]}")
                    refs = reader.sequences()
                    self.sessions[sid] = reader.info
                    self.paths[sid] = path
                    self.refs.extend(refs)
            except SessionFileError as exc:
                self.problems.append(exc)

    def query(
        self,
        *,
        concentration_pct: float | Iterable[float] | None = None,
        pushes: Iterable[int] | None = None,
        positions: Iterable[int] | None = None,
        kind: str | None = None,
        session_ids: Iterable[str] | None = None,
        qc_passed: bool | None = True,
        include_failed: bool = False,
        labelled: bool | None = None,
    ) -> list[SequenceRef]:
        """Complete sequences matching every given criterion, in catalogue order.

        ``qc_passed=None`` ignores the QC verdict; ``labelled=True`` keeps only labelled sequences.
        Concentrations are matched to within 1e-6 %.

        Example: all complete sequences of concentration 10 %, pushes 2-6:
        ``catalogue.query(concentration_pct=10.0, pushes=range(2, 7))``.
        """
        concs = _as_set(concentration_pct)
        push_set = None if pushes is None else set(pushes)
        pos_set = None if positions is None else set(positions)
        sid_set = None if session_ids is None else set(session_ids)
        out = []
        for ref in self.refs:
            if concs is not None and (ref.concentration_pct is None or
                                      not any(math.isclose(ref.concentration_pct, c, abs_tol=1e-6) for c in concs)):
                continue
            if push_set is not None and ref.push_index not in push_set:
                continue
            if pos_set is not None and ref.position_index not in pos_set:
                continue
            if kind is not None and ref.kind != kind:
                continue
            if sid_set is not None and ref.session_id not in sid_set:
                continue
            if ref.failed and not include_failed:
                continue
            if qc_passed is not None and ref.qc_passed != qc_passed:
                continue
            if labelled is not None and (ref.label_e_kpa is not None) != labelled:
                continue
            out.append(ref)
        return out
