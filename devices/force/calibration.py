"""Calibrations of the two ATI force/torque sensors: counts per unit and measuring ranges.

The serial F/T controller reports resolved loads as integer *counts*; a calibration says how many
counts make one newton or one newton-millimetre, and where the transducer saturates. Both
calibrations below use one count per resolution step of ATI's published resolution for that
calibration, so one count is the smallest load change the system resolves:

- Nano17, calibration SI-12-0.12 (indentation, under the hexapod plate): Fx/Fy +/-12 N,
  Fz +/-17 N, Tx/Ty/Tz +/-120 N mm; resolution 1/320 N (3.1 mN, the paper's figure) and
  1/64 N mm.
- Nano43, calibration SI-36-0.5 (probe, on the robot flange): +/-36 N on every force axis,
  +/-500 N mm on every torque axis; resolution 1/128 N and 1/32 N mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FTCalibration:
    """Counts per unit and ranges of one sensor calibration.

    Attributes
    ----------
    model, calibration
        ATI body style and calibration part number, e.g. ``"Nano17"``, ``"SI-12-0.12"``.
    counts_per_n, counts_per_nmm
        Integer counts per newton (forces) and per newton-millimetre (torques).
    range_force_n
        Saturation limit of ``(Fx, Fy, Fz)``, newtons, shape (3,); the range is symmetric.
    range_torque_nmm
        Saturation limit of ``(Tx, Ty, Tz)``, newton-millimetres, shape (3,).
    """

    model: str
    calibration: str
    counts_per_n: int
    counts_per_nmm: int
    range_force_n: tuple[float, float, float]
    range_torque_nmm: tuple[float, float, float]

    @property
    def resolution_n(self) -> float:
        """Force of one count, newtons."""
        return 1.0 / self.counts_per_n

    @property
    def resolution_nmm(self) -> float:
        """Torque of one count, newton-millimetres."""
        return 1.0 / self.counts_per_nmm

    def counts_per_unit(self) -> np.ndarray:
        """Counts per unit of ``(Fx, Fy, Fz, Tx, Ty, Tz)``, shape (6,), float64."""
        return np.array([self.counts_per_n] * 3 + [self.counts_per_nmm] * 3, dtype=np.float64)

    def range_counts(self) -> np.ndarray:
        """Saturation limit of each axis in counts, shape (6,), int64."""
        ranges = np.array(self.range_force_n + self.range_torque_nmm, dtype=np.float64)
        return np.rint(ranges * self.counts_per_unit()).astype(np.int64)

    def to_wrench(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Convert counts ``(Fx, Fy, Fz, Tx, Ty, Tz)``, shape (6,), to force (N) and torque (N mm).

        Returns
        -------
        force_n, torque_nmm
            Each shape (3,), float64.
        """
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (6,):
            raise ValueError(f"expected 6 counts (Fx, Fy, Fz, Tx, Ty, Tz), got shape {counts.shape}")
        return counts[:3] / self.counts_per_n, counts[3:] / self.counts_per_nmm


NANO17_SI_12_012 = FTCalibration(
    model="Nano17",
    calibration="SI-12-0.12",
    counts_per_n=320,
    counts_per_nmm=64,
    range_force_n=(12.0, 12.0, 17.0),
    range_torque_nmm=(120.0, 120.0, 120.0),
)

NANO43_SI_36_05 = FTCalibration(
    model="Nano43",
    calibration="SI-36-0.5",
    counts_per_n=128,
    counts_per_nmm=32,
    range_force_n=(36.0, 36.0, 36.0),
    range_torque_nmm=(500.0, 500.0, 500.0),
)

_BY_SENSOR = {"nano17": NANO17_SI_12_012, "nano43": NANO43_SI_36_05}


def calibration_for(sensor: str) -> FTCalibration:
    """The calibration of the rig's sensor ``"nano17"`` or ``"nano43"`` (case-insensitive)."""
    try:
        return _BY_SENSOR[sensor.lower()]
    except KeyError:
        raise ValueError(f"unknown F/T sensor {sensor!r}; choose one of {sorted(_BY_SENSOR)}") from None
