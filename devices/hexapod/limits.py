"""The rig's hexapod limits and axis names, checked before any I/O by every ``Hexapod`` (the PI driver
and the simulation). Malformed arguments raise ``ValueError``, commands beyond a limit
``SafetyLimitError``; nothing is sent in either case."""

from __future__ import annotations

import math
import numbers

from shearlab.devices.errors import SafetyLimitError
from shearlab.protocols.rig import HexapodLimits

AXES: tuple[str, ...] = ("X", "Y", "Z", "U", "V", "W")
LINEAR_AXES: tuple[str, ...] = ("X", "Y", "Z")


def checked_axes(values: dict[str, float]) -> dict[str, float]:
    """A non-empty ``{axis: value}`` dict of known axes and finite numbers, as floats."""
    if not isinstance(values, dict) or not values:
        raise ValueError(f"give a non-empty {{axis: value}} dict with axes from {' '.join(AXES)}, got {values!r}")
    unknown = [axis for axis in values if axis not in AXES]
    if unknown:
        raise ValueError(f"unknown axes {unknown}; the hexapod has {' '.join(AXES)}")
    bad = {axis: v for axis, v in values.items() if not is_finite_number(v)}
    if bad:
        raise ValueError(f"axis values must be finite numbers, got {bad}")
    return {axis: float(v) for axis, v in values.items()}


def check_travel(name: str, limits: HexapodLimits, target: dict[str, float]) -> None:
    """X, Y and Z targets within +/- ``limits.max_travel_mm``."""
    limit = limits.max_travel_mm
    beyond = {axis: v for axis, v in target.items() if axis in LINEAR_AXES and abs(v) > limit}
    if beyond:
        listed = ", ".join(f"{axis} {v:g} mm" for axis, v in beyond.items())
        raise SafetyLimitError(name, f"target {listed} beyond the rig's travel of +/-{limit:g} mm")


def checked_velocity_mm_s(name: str, limits: HexapodLimits, mm_s: float) -> float:
    """A positive system velocity at most ``limits.max_velocity_mm_s``."""
    if not (is_finite_number(mm_s) and mm_s > 0):
        raise ValueError(f"velocity must be a positive number of mm/s, got {mm_s!r}")
    if mm_s > limits.max_velocity_mm_s:
        raise SafetyLimitError(name, f"velocity {mm_s:g} mm/s above the rig's limit of {limits.max_velocity_mm_s:g} mm/s")
    return float(mm_s)


def is_finite_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
