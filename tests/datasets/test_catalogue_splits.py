"""Queries across session files and the paper's split protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from shearlab.datasets import Catalogue, Split, cv_splits, loco_splits
from shearlab.datasets.reader import SequenceRef


@pytest.fixture
def folder(make_session, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    make_session("b10", 10.0, positions=range(3), folder=sessions, failed_keys={"p001_push4"})
    make_session("b15", 15.0, positions=range(2), folder=sessions, pushes=[2, 3])
    (sessions / "junk.h5").write_bytes(b"not hdf5")
    return sessions


def test_query_concentration_and_pushes(folder: Path) -> None:
    cat = Catalogue(folder)
    assert [p.path.name for p in cat.problems] == ["junk.h5"]
    refs = cat.query(concentration_pct=10.0, pushes=range(2, 7))
    assert {r.push_index for r in refs} == {2, 3, 4, 5, 6}
    assert {r.concentration_pct for r in refs} == {10.0}
    assert len(refs) == 3 * 5 - 1  # the failed sequence is left out
    assert "b10/p001_push4" not in {r.id for r in refs}
    assert len(cat.query(concentration_pct=10.0, include_failed=True, qc_passed=None)) == 21
    assert len(cat.query(concentration_pct=[10.0, 15.0], pushes=[2])) == 3 + 2
    assert cat.query(kind="inclusion") == []


def _refs(concs: dict[float, int], pushes: range = range(1, 8)) -> list[SequenceRef]:
    refs = []
    for conc, n_positions in concs.items():
        for pos in range(n_positions):
            for push in pushes:
                refs.append(SequenceRef(
                    path=Path("x.h5"), session_id=f"s{conc:g}", kind="block", phantom="b", batch_id="b",
                    concentration_pct=conc, row=0, key=f"p{pos:03d}_push{push}", position_index=pos,
                    push_index=push, push_lateral_mm=0.0, qc_passed=True, failed=False, complete=True,
                    has_displacement=True, label_e_kpa=50.0, label_e_kpa_std=1.0, label_calibration_id="c",
                    displacement_mean_um=0.0, displacement_std_um=1.0, shape=(35, 250, 600)))
    return refs


def _positions(refs: list[SequenceRef], ids: tuple[str, ...]) -> set[tuple[str, int]]:
    by_id = {r.id: r for r in refs}
    return {(by_id[i].session_id, by_id[i].position_index) for i in ids}


def test_cv_splits_follow_the_paper() -> None:
    refs = _refs({c: 80 for c in (5.0, 7.5, 10.0, 12.5, 15.0, 17.5)})
    splits = cv_splits(refs, n_folds=4, seed=3)
    tested: set[tuple[str, int]] = set()
    for split in splits:
        train, val, test = (_positions(refs, ids) for ids in (split.train, split.val, split.test))
        assert not (train & val) and not (train & test) and not (val & test)  # whole positions per side
        for conc in ("s5", "s10", "s17.5"):
            assert [len({p for p in s if p[0] == conc}) for s in (train, val, test)] == [60, 10, 10]
        train_refs, _, test_refs = split.select(refs)
        assert {r.push_index for r in train_refs} == {2, 3, 4, 5, 6}  # pushes 1 and 7 never train
        assert {r.push_index for r in test_refs} == set(range(1, 8))
        tested |= test
    assert len(tested) == 6 * 40  # folds test disjoint positions
    assert cv_splits(refs, seed=3) == splits and cv_splits(refs, seed=4) != splits


def test_loco_splits_hold_out_one_concentration() -> None:
    refs = _refs({c: 8 for c in (5.0, 7.5, 10.0, 12.5, 15.0, 17.5)})
    splits = loco_splits(refs, seed=0)
    assert [s.held_out_concentration_pct for s in splits] == [7.5, 10.0, 12.5, 15.0]
    by_id = {r.id: r for r in refs}
    for split in splits:
        held = split.held_out_concentration_pct
        assert {by_id[i].concentration_pct for i in split.train} == {5.0, 7.5, 10.0, 12.5, 15.0, 17.5} - {held}
        assert {by_id[i].concentration_pct for i in split.val + split.test} == {held}
        assert len(_positions(refs, split.val)) == len(_positions(refs, split.test)) == 4
        assert not {by_id[i].push_index for i in split.train} & {1, 7}


def test_split_json_round_trip(tmp_path: Path) -> None:
    refs = _refs({10.0: 8, 12.5: 8})
    split = cv_splits(refs, n_folds=4)[1]
    split.save(tmp_path / "split.json")
    again = Split.load(tmp_path / "split.json")
    assert again == split and again.name == "cv4-fold1-seed0"
    with pytest.raises(KeyError, match="not available"):
        again.select(refs[:10])
