"""What stands in for the lab on a twin or in the simulation: the operator's hands and the world's truth.

A real rig has devices and people. A digital twin (through its control endpoint) and the in-process
simulation also place phantoms where a person would, report the world's true state (which no sensor
reads) and inject device faults. Both implement ``StandIn``, with one vocabulary of faults (``FAULTS``).
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import Field, model_validator

from shearlab.devices.interfaces import DeviceName
from shearlab.protocols.phantoms import Cylinder
from shearlab.protocols.strict_model import StrictModel

FaultKind = Literal[
    "protective_stop", "drop_rtde", "error", "stall", "fault", "drop", "unplug", "replug", "garbage", "drop_records"
]
_SENSOR_FAULTS: frozenset[FaultKind] = frozenset({"unplug", "replug", "garbage", "drop_records"})
# Which faults each device takes.
FAULTS: dict[DeviceName, frozenset[FaultKind]] = {
    "robot": frozenset({"protective_stop", "drop_rtde"}),
    "hexapod": frozenset({"error", "stall"}),
    "scanner": frozenset({"fault", "drop"}),
    "probe_ft": _SENSOR_FAULTS,
    "indenter_ft": _SENSOR_FAULTS,
}


class Fault(StrictModel):
    """One injected fault; arguments that do not belong to ``kind`` are ignored.

    ========================  ==============================================================
    device, kind              effect (arguments)
    ========================  ==============================================================
    robot protective_stop     the arm stops where it is and latches a protective stop
    robot drop_rtde           the state stream stalls for ``duration_s`` virtual seconds
    hexapod error             the controller's next reply carries GCS error ``code``
    hexapod stall             ``axis`` stops moving while the controller thinks it moves
    scanner fault             the next FIRE fails with HARDWARE_FAULT ``message``, latched until CONFIGURE
    scanner drop              the link to the scanner is cut (the next call reconnects)
    probe_ft/indenter_ft ...  ``unplug``/``replug`` the cable, ``garbage`` (``n_bytes`` of noise on the
                              line), ``drop_records`` (the next ``n`` records are lost)
    ========================  ==============================================================
    """

    device: DeviceName
    kind: FaultKind
    duration_s: float = Field(default=1.0, gt=0)
    code: int | None = Field(default=None, ge=1)
    axis: Literal["X", "Y", "Z", "U", "V", "W"] = "Z"
    message: str = "injected fault"
    n_bytes: int = Field(default=16, ge=1)
    n: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _known(self) -> Fault:
        if self.kind not in FAULTS[self.device]:
            raise ValueError(f"no fault {self.kind!r} for device {self.device!r}; it takes {sorted(FAULTS[self.device])}")
        if (self.device, self.kind) == ("hexapod", "error") and self.code is None:
            raise ValueError("a hexapod error needs its GCS error code")
        return self


class WorldState(StrictModel):
    """The true state of a simulated world at one moment: what tests check safety against."""

    time_s: float
    robot_pose: tuple[float, float, float, float, float, float]
    protective_stopped: bool
    protective_stop_reason: str | None
    probe_force_n: float
    probe_indentation_mm: float
    probe_over: str | None
    plate_z_mm: float
    indenter_force_n: float
    cylinder: Cylinder | None


class StandIn(Protocol):
    """The operator's hands and the world's truth on a twin (``twin``) or in the simulation (``simulation``)."""

    name: str

    def place_cylinder(self, cylinder: Cylinder) -> None:
        """Put ``cylinder`` under the indentation plate, as the operator would."""

    def remove_cylinder(self) -> None: ...

    def state(self) -> WorldState: ...

    def inject_fault(self, fault: Fault) -> None: ...
