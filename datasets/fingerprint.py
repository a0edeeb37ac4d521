"""What a model was trained on, as one hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from shearlab.datasets.reader import SequenceRef


def dataset_fingerprint(refs: Iterable[SequenceRef]) -> str:
    """Hash of the sequence ids, their labels and normalisation statistics, in id order."""
    digest = hashlib.blake2b(digest_size=16)
    for ref in sorted(refs, key=lambda r: r.id):
        digest.update(f"{ref.id}|{ref.label_e_kpa}|{ref.displacement_mean_um}|{ref.displacement_std_um}\n".encode())
    return digest.hexdigest()
