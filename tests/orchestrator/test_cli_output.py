"""How a report's rows read on a terminal: whole words, whatever its width."""

import io

import pytest
from rich.console import Console

from shearlab.orchestrator.cli import output

ROWS = [{"path": "blocks_block_10p0.h5", "ok": True, "sequences": 42, "failed": 0, "half_written": 0,
         "indentation_runs": 0, "calibration_fits": 0, "problems": []}]


def _shown(monkeypatch: pytest.MonkeyPatch, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), highlight=False)
    monkeypatch.setattr(output, "out", console)
    output.emit(ROWS, output.rows_table("sessions", ROWS), as_json=False)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_wide_terminal_gets_one_row_per_file_headed_by_the_json_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _shown(monkeypatch, 150)
    assert all(key in text for key in ROWS[0])
    assert len([line for line in text.splitlines() if "blocks_block_10p0.h5" in line]) == 1


def test_a_narrow_terminal_gets_one_record_per_row_instead_of_words_cut_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _shown(monkeypatch, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "blocks_block_10p0.h5" in text and "indentation_runs" in text and "calibration_fits" in text
