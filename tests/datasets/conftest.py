"""The description of a small synthetic session (35 x 64 x 96 grid, the paper's pixel pitch)."""

from __future__ import annotations

import pytest

from shearlab.datasets.records import SessionInfo
from shearlab.training.synthetic import synthetic_session_info


@pytest.fixture
def info() -> SessionInfo:
    return synthetic_session_info("s-test", concentration_pct=10.0)
