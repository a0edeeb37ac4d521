"""Shared fixtures: small synthetic sessions (35 x 64 x 96 grid, the paper's pixel pitch)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shearlab.datasets.records import SessionInfo
from shearlab.datasets.synthetic import synthetic_session_info, write_synthetic_session


@pytest.fixture
def make_session(tmp_path: Path) -> Callable[..., Path]:
    """``make_session(session_id, concentration_pct=10.0, positions=range(2), **kw) -> path``."""

    def _make(session_id: str, concentration_pct: float = 10.0, positions: range | list[int] = range(2),
              folder: Path | None = None, **kwargs: object) -> Path:
        info = synthetic_session_info(session_id, concentration_pct=concentration_pct)
        path = (folder or tmp_path) / f"{session_id}.h5"
        return write_synthetic_session(path, info, positions=positions, **kwargs)  # type: ignore[arg-type]

    return _make


@pytest.fixture
def info() -> SessionInfo:
    return synthetic_session_info("s-test", concentration_pct=10.0)
