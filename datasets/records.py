"""What a session file holds, as Python objects: session description, sequences, indentation runs.

``SessionInfo`` and ``CalibrationFit`` are pydantic models (they cross the boundary as JSON inside the
file and as parameters of flows); the records that carry arrays are dataclasses over numpy arrays.

Units: displacement in micrometres, forces in newtons, lengths crossing the boundary in millimetres
unless the name says otherwise; the probe pose follows the UR convention ``(x, y, z)`` in metres and a
rotation vector ``(rx, ry, rz)`` in radians, in the robot base frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_validator

from shearlab.protocols.sequences import RoiSpec, SequenceSpec
from shearlab.protocols.strict_model import StrictModel

SessionKind = Literal["block", "inclusion", "calibration"]


class SessionInfo(StrictModel):
    """Everything that identifies a session and how its data were measured.

    ``rig`` is the rig file as a dict (``Rig.model_dump(mode="json")``); ``plan`` is free-form plan
    metadata (position list, seeds, operator) and must be JSON-serialisable.
    """

    kind: SessionKind
    session_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    phantom: str = Field(min_length=1)
    batch_id: str = Field(min_length=1, max_length=64)
    concentration_pct: float | None = Field(default=None, gt=0, lt=100)
    rig_name: str = "rig"
    rig: dict[str, Any] = Field(default_factory=dict)
    sequence: SequenceSpec = SequenceSpec()
    roi: RoiSpec = RoiSpec()
    store_iq: bool = False
    plan: dict[str, Any] = Field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """The fields that must match when a session is resumed (the plan and rig may be edited)."""
        return self.model_dump(mode="json", include={"kind", "session_id", "phantom", "batch_id",
                                                     "concentration_pct", "sequence", "store_iq"})


class QcResult(StrictModel):
    """Data-quality verdict of one sequence with the figures it was based on."""

    # Figures are measurements, not settings: an SNR of a motionless volume is -inf, and says so.
    model_config = ConfigDict(**StrictModel.model_config | {"allow_inf_nan": True})

    passed: bool
    reason: str = ""
    figures: dict[str, float] = Field(default_factory=dict)


class Label(StrictModel):
    """Young's modulus label with its provenance: the calibration run that measured it."""

    e_kpa: float = Field(gt=0)
    e_kpa_std: float = Field(ge=0)
    calibration_id: str = Field(min_length=1, max_length=64)

    @field_validator("e_kpa", "e_kpa_std")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


class CalibrationFit(StrictModel):
    """Result of the indentation regression of one batch (SPEC §2: 2 %-7 % strain, all 8 runs).

    ``ci95_kpa`` is the 95 % confidence interval ``(low, high)`` of the batch modulus, from the spread
    between its ``cylinders``; a single number is read as a half-width around ``e_kpa``.
    ``sample_sd_kpa`` is how far another sample of the batch (the block a label goes to) lies from
    ``e_kpa``, one standard deviation: the uncertainty of a label (see ``protocols.stress_strain``).
    """

    calibration_id: str = Field(min_length=1, max_length=64)
    batch_id: str = Field(default="", max_length=64)
    concentration_pct: float | None = None
    e_kpa: float = Field(gt=0)
    ci95_kpa: tuple[float, float]
    cylinders: int = Field(ge=2)
    sample_sd_kpa: float = Field(ge=0)
    n_points: int = Field(ge=0)
    r2: float
    strain_min: float = 0.02
    strain_max: float = 0.07
    fitted_at: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _half_width(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("ci95_kpa"), int | float):
            half = float(data["ci95_kpa"])
            data = {**data, "ci95_kpa": (data["e_kpa"] - half, data["e_kpa"] + half)}
        return data


@dataclass
class SequenceRecord:
    """One push sequence as acquired, ready to append to a session.

    Parameters
    ----------
    key
        Unique within the session, e.g. ``"p007_push3"`` (see ``sequence_key``).
    position_index, push_index
        Probe position (0-based) and push (1-based, push 1..7 across the probe).
    push_lateral_mm
        Push centre, mm from the probe centre.
    probe_pose
        Shape ``(6,)``: x, y, z in m and rotation vector in rad, robot base frame.
    displacement_um
        Shape ``(frames, depth, lateral)``, axial displacement in micrometres (float32). May be
        ``None`` only for a sequence recorded as failed.
    contact_force_n, contact_force_time_s
        Shape ``(n,)``: the Nano43 contact force during the acquisition and its times in seconds
        relative to the push.
    iq
        Optional shape ``(frames, depth, lateral)`` complex64 beamformed IQ frames.
    failed, failure_reason
        Set when the sequence still failed after its re-acquisition attempts; the record is kept so
        that the gap in the plan is explained, and is never used for training.
    """

    key: str
    position_index: int
    push_index: int
    push_lateral_mm: float
    probe_pose: np.ndarray
    displacement_um: np.ndarray | None
    contact_force_n: np.ndarray
    contact_force_time_s: np.ndarray
    acquired_at: str
    qc: QcResult
    label: Label | None = None
    iq: np.ndarray | None = None
    attempt: int = 1
    failed: bool = False
    failure_reason: str = ""


@dataclass
class IndentationRecord:
    """One indentation run of one cylinder, logged at 200 Hz.

    ``time_s``, ``force_n``, ``plate_z_mm`` have shape ``(n,)``; ``contact_index`` is the sample at
    which the plate touched the cylinder (-1 if never), ``stop_reason`` why the run ended.
    """

    cylinder_index: int
    batch_id: str
    time_s: np.ndarray
    force_n: np.ndarray
    plate_z_mm: np.ndarray
    contact_index: int
    stop_reason: str
    concentration_pct: float | None = None
    started_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def sequence_key(position_index: int, push_index: int) -> str:
    """The conventional key of a block/inclusion sequence, e.g. ``p007_push3``."""
    return f"p{position_index:03d}_push{push_index:d}"
