"""Export of a session's displacement to USTB's Ultrasound File Format (UFF, HDF5).

Each complete, non-failed sequence becomes one ``uff.beamformed_data`` object at ``/<key>`` with a
``uff.linear_scan``. USTB is MATLAB: it writes arrays column-major, so a MATLAB
``data [pixel x channel x wave x frame]`` appears in HDF5 (and h5py) with the axes reversed,
``(frame, wave, channel, pixel)``; a MATLAB column vector ``[N x 1]`` appears as ``(1, N)``. Pixels of a
linear scan run depth-fastest (MATLAB ``reshape`` of a ``[z x x]`` grid). Data are in metres (the
session holds micrometres). Numeric leaves carry ``class="single"`` and ``complex=0``, objects
``class="uff.<name>"``, as USTB's own writer does.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from shearlab.datasets.layout import software_version
from shearlab.datasets.reader import SessionReader
from shearlab.protocols.output_files import atomic_output, check_output

UFF_VERSION = "v1.2.0"


def _numeric(group: h5py.Group, name: str, value: np.ndarray | float) -> None:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(1, -1)
    dset = group.create_dataset(name, data=array)
    dset.attrs["class"] = "single"
    dset.attrs["name"] = name
    dset.attrs["complex"] = np.array([0], dtype=np.uint8)
    dset.attrs["imaginary"] = np.array([0], dtype=np.uint8)


def _object(parent: h5py.Group | h5py.File, name: str, uff_class: str) -> h5py.Group:
    group = parent.create_group(name)
    group.attrs["class"] = uff_class
    group.attrs["name"] = name
    group.attrs["array"] = np.array([0], dtype=np.uint8)
    group.attrs["size"] = np.array([1, 1], dtype=np.float64)
    return group


def export_uff(session: Path | str, out: Path | str, *, keys: list[str] | None = None,
               verify: bool = True, force: bool = False) -> list[str]:
    """Write ``session``'s displacement volumes to the UFF file ``out``; returns the keys written.

    ``keys`` limits the export; by default every complete sequence with displacement data. Each
    sequence's checksum is verified before it is exported unless ``verify=False``. ``out`` is never the
    session itself; an existing ``out`` is replaced only with ``force``, and only once the export is whole
    (``OutputFileError`` otherwise).
    """
    out = Path(out)
    check_output(out, inputs=[Path(session)], force=force)
    with SessionReader(session) as reader:
        grid = reader.grid
        refs = [r for r in reader.sequences() if r.has_displacement]
        if keys is not None:
            known = {r.key for r in refs}
            if missing := [k for k in keys if k not in known]:
                raise KeyError(f"{reader.path}: no complete sequence with displacement: {', '.join(missing)}")
            refs = [r for r in refs if r.key in set(keys)]
        with atomic_output(out) as tmp, h5py.File(tmp, "w") as fh:
            fh.attrs["uff_version"] = UFF_VERSION
            for ref in refs:
                record = reader.read_sequence(ref.key, verify=verify)
                volume_m = np.asarray(record.displacement_um, dtype=np.float32) * np.float32(1e-6)
                frames, depth, lateral = volume_m.shape
                bd = _object(fh, ref.key, "uff.beamformed_data")
                bd.attrs["author"] = "shearlab"
                bd.attrs["reference"] = "Neidhardt et al., IEEE TBME 2022 (arXiv 2204.05745)"
                bd.attrs["version"] = software_version()
                bd.attrs["info"] = json.dumps({
                    "quantity": "axial displacement, positive away from the probe", "units": "m",
                    "session_id": reader.info.session_id, "key": ref.key, "push_index": ref.push_index,
                    "push_lateral_mm": ref.push_lateral_mm, "label_e_kpa": ref.label_e_kpa,
                    "label_calibration_id": ref.label_calibration_id, "first_frame_s": float(grid.frame_times_s[0]),
                })
                # (frames, depth, lateral) -> MATLAB [pixel x 1 x 1 x frame], pixels depth-fastest.
                pixels = volume_m.transpose(0, 2, 1).reshape(frames, 1, 1, lateral * depth)
                _numeric(bd, "data", pixels)
                scan = _object(bd, "scan", "uff.linear_scan")
                _numeric(scan, "x_axis", grid.lateral_m)
                _numeric(scan, "z_axis", grid.depth_m)
                if grid.frame_times_s.size > 1:
                    _numeric(bd, "frame_rate", 1.0 / float(np.mean(np.diff(grid.frame_times_s))))
                _numeric(bd, "modulation_frequency", reader.info.sequence.probe.centre_frequency_mhz * 1e6)
    return [r.key for r in refs]


def read_uff_displacement_m(path: Path | str, key: str) -> np.ndarray:
    """Read back one exported object as ``(frames, depth, lateral)`` metres (for checks and tests)."""
    with h5py.File(path, "r") as fh:
        bd = fh[key]
        depth = bd["scan"]["z_axis"].shape[1]
        lateral = bd["scan"]["x_axis"].shape[1]
        data: np.ndarray = bd["data"][:]
        return data.reshape(data.shape[0], lateral, depth).transpose(0, 2, 1)
