"""Property-based round trips of the metadata a session stores."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shearlab.datasets import QcResult, SessionInfo, SessionReader, SessionWriter
from shearlab.training.synthetic import small_sequence_spec, synthetic_record, synthetic_session_info

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_SPEC = small_sequence_spec(n_frames=4, n_depth=8, n_lateral=8)


@settings(max_examples=40, deadline=None)
@given(session_id=st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True), phantom=_text.filter(bool),
       conc=st.none() | st.floats(0.5, 50.0), plan=st.dictionaries(_text, st.integers() | _text | _finite, max_size=4))
def test_session_info_survives_json(session_id: str, phantom: str, conc: float | None, plan: dict) -> None:  # type: ignore[type-arg]
    info = SessionInfo(kind="inclusion", session_id=session_id, phantom=phantom, batch_id="b",
                       concentration_pct=conc, sequence=_SPEC, plan=plan)
    assert SessionInfo.model_validate_json(info.model_dump_json()) == info


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_text.filter(lambda s: 0 < len(s.encode()) <= 64), reason=_text, lateral=_finite,
       pose=st.lists(_finite, min_size=6, max_size=6), figures=st.dictionaries(_text, _finite, max_size=5),
       position=st.integers(0, 2**31 - 1), push=st.integers(1, 2**15 - 1), attempt=st.integers(1, 99))
def test_sequence_metadata_round_trips(tmp_path: Path, key: str, reason: str, lateral: float, pose: list[float],
                                       figures: dict[str, float], position: int, push: int, attempt: int) -> None:
    info = synthetic_session_info("prop", spec=_SPEC)
    record = synthetic_record(info, 0, 1)
    record.key, record.push_lateral_mm, record.probe_pose = key, lateral, np.array(pose)
    record.position_index, record.push_index, record.attempt = position, push, attempt
    record.qc = QcResult(passed=False, reason=reason, figures=figures)
    path = tmp_path / f"{abs(hash((key, reason, lateral)))}.h5"
    with SessionWriter.open(path, session=info, fsync=False) as writer:
        writer.append_sequence(record)
    with SessionReader(path) as reader:
        back = reader.read_sequence(key)  # checksum verified
    assert (back.key, back.position_index, back.push_index, back.attempt) == (key, position, push, attempt)
    assert back.push_lateral_mm == lateral and back.probe_pose.tolist() == pose
    assert back.qc.reason == reason and back.qc.figures == figures
    path.unlink()


@settings(max_examples=40, deadline=None)
@given(e=st.floats(allow_nan=True, allow_infinity=True), std=st.floats(allow_nan=True), cal=_text)
def test_labels_are_validated(e: float, std: float, cal: str) -> None:
    from pydantic import ValidationError

    from shearlab.datasets import Label

    ok = math.isfinite(e) and e > 0 and math.isfinite(std) and std >= 0 and 0 < len(cal) <= 64
    try:
        Label(e_kpa=e, e_kpa_std=std, calibration_id=cal)
    except ValidationError:
        assert not ok
    else:
        assert ok
