"""Training/validation/test splits of sequences (SPEC §2), serialisable with the model.

Splits are made over probe *positions* (all pushes of a position fall on the same side), per
concentration, and pushes 1 and 7 (farthest from the ROI) never enter training; they stay in
validation and test so that the error-vs-push figure covers them. A split lists sequence ids
(``session_id/key``) and round-trips through JSON, so every result can name the split it used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import ValidationError

from shearlab.datasets.errors import DataFileError
from shearlab.datasets.reader import SequenceRef
from shearlab.protocols.config_files import describe_validation_error
from shearlab.protocols.strict_model import StrictModel

EXCLUDED_TRAIN_PUSHES: tuple[int, ...] = (1, 7)


class Split(StrictModel):
    """One train/val/test assignment of sequence ids."""

    name: str
    protocol: Literal["cv", "loco", "custom"]
    seed: int
    fold: int | None = None
    held_out_concentration_pct: float | None = None
    excluded_train_pushes: tuple[int, ...] = EXCLUDED_TRAIN_PUSHES
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str) -> Split:
        return cls.model_validate_json(text)

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> Split:
        """Read a split file; ``DataFileError`` names the file and what is wrong with it."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileError(path, "split file not found") from None
        except OSError as exc:
            raise DataFileError(path, f"cannot be read ({exc.strerror})") from None
        except ValidationError as exc:
            raise DataFileError(path, "not a split: " + "; ".join(describe_validation_error(exc))) from None

    def select(self, refs: Iterable[SequenceRef]) -> tuple[list[SequenceRef], list[SequenceRef], list[SequenceRef]]:
        """``(train, val, test)`` refs, in the split's order; ``KeyError`` if an id is not in ``refs``."""
        by_id = {r.id: r for r in refs}
        missing = [i for i in (*self.train, *self.val, *self.test) if i not in by_id]
        if missing:
            raise KeyError(f"split {self.name!r}: {len(missing)} sequences are not available, e.g. {missing[:3]}")
        return ([by_id[i] for i in self.train], [by_id[i] for i in self.val], [by_id[i] for i in self.test])


def _conc_key(ref: SequenceRef) -> float:
    if ref.concentration_pct is None:
        raise ValueError(f"{ref.id}: sequence has no concentration; splits need one")
    return round(ref.concentration_pct, 6)


def _positions(refs: Sequence[SequenceRef]) -> dict[float, list[tuple[str, int]]]:
    """Sorted distinct (session, position) per concentration."""
    out: dict[float, set[tuple[str, int]]] = defaultdict(set)
    for ref in refs:
        out[_conc_key(ref)].add((ref.session_id, ref.position_index))
    return {c: sorted(p) for c, p in out.items()}


def _shuffled(items: list[tuple[str, int]], seed: int, conc: float) -> list[tuple[str, int]]:
    rng = np.random.default_rng([seed, int(round(conc * 1000))])
    return [items[i] for i in rng.permutation(len(items))]


def _ids(refs: Sequence[SequenceRef], positions: set[tuple[str, int]], *, exclude_pushes: Iterable[int] = ()) -> tuple[str, ...]:
    excluded = set(exclude_pushes)
    return tuple(r.id for r in refs
                 if (r.session_id, r.position_index) in positions and r.push_index not in excluded)


def cv_splits(refs: Sequence[SequenceRef], *, n_folds: int = 4, seed: int = 0,
              excluded_train_pushes: tuple[int, ...] = EXCLUDED_TRAIN_PUSHES) -> list[Split]:
    """K-fold cross-validation over positions, per concentration (paper: 80 -> 60/10/10).

    Fold ``k`` holds out the ``k``-th of ``n_folds`` groups of each concentration's shuffled
    positions; the first half of the held-out positions validate, the second half test.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    refs = list(refs)
    by_conc = _positions(refs)
    splits = []
    for fold in range(n_folds):
        train: set[tuple[str, int]] = set()
        val: set[tuple[str, int]] = set()
        test: set[tuple[str, int]] = set()
        for conc, positions in by_conc.items():
            if len(positions) < 2 * n_folds:
                raise ValueError(f"{conc} %: {len(positions)} positions cannot make {n_folds} folds with "
                                 "a validation and a test position each")
            groups = np.array_split(np.arange(len(positions)), n_folds)
            shuffled = _shuffled(positions, seed, conc)
            held_idx = set(groups[fold].tolist())
            held = [shuffled[i] for i in sorted(held_idx)]
            half = len(held) // 2
            val.update(held[:half])
            test.update(held[half:])
            train.update(p for i, p in enumerate(shuffled) if i not in held_idx)
        splits.append(Split(
            name=f"cv{n_folds}-fold{fold}-seed{seed}", protocol="cv", seed=seed, fold=fold,
            excluded_train_pushes=excluded_train_pushes,
            train=_ids(refs, train, exclude_pushes=excluded_train_pushes), val=_ids(refs, val), test=_ids(refs, test),
        ))
    return splits


def loco_splits(refs: Sequence[SequenceRef], *, held_out_pct: Iterable[float] = (7.5, 10.0, 12.5, 15.0),
                seed: int = 0, excluded_train_pushes: tuple[int, ...] = EXCLUDED_TRAIN_PUSHES) -> list[Split]:
    """Leave-one-concentration-out: train on every other concentration, split the held-out one's
    positions 50/50 into validation and test (paper: over 7.5 %-15 %)."""
    refs = list(refs)
    by_conc = _positions(refs)
    splits = []
    for held in held_out_pct:
        conc = next((c for c in by_conc if math.isclose(c, held, abs_tol=1e-6)), None)
        if conc is None:
            raise ValueError(f"no sequences of concentration {held} % to hold out")
        positions = _shuffled(by_conc[conc], seed, conc)
        if len(positions) < 2:
            raise ValueError(f"{held} %: need at least 2 positions to split into validation and test")
        half = len(positions) // 2
        train = {p for c, ps in by_conc.items() if c != conc for p in ps}
        splits.append(Split(
            name=f"loco-{held:g}pct-seed{seed}", protocol="loco", seed=seed, held_out_concentration_pct=float(held),
            excluded_train_pushes=excluded_train_pushes,
            train=_ids(refs, train, exclude_pushes=excluded_train_pushes),
            val=_ids(refs, set(positions[:half])), test=_ids(refs, set(positions[half:])),
        ))
    return splits
