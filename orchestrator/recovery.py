"""What a campaign does when a device (or the disk) fails mid-run: fail safe, or ask the operator.

Unattended (``on_fault="stop"``, the default) a fault ends the run as it always has: the probe lifted,
the arm stopped, the error naming the device that failed first; a rerun resumes. With an operator at the
Prefect UI (``on_fault="ask"``), the run instead pauses with a form, as Opentrons' error recovery and
Bluesky's suspenders do: the devices are already in their safe state, and the operator, having looked,
chooses to retry the position (the devices are reconnected, a protective stop unlocked, the position
redone), skip it (the campaign goes on without it; a later rerun can still acquire it), or abort. A form
left unanswered for ``DECISION_TIMEOUT_S`` aborts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefect.input import RunInput

from shearlab.datasets.errors import DiskFullError, SessionWriteError
from shearlab.devices.errors import DeviceError

FaultPolicy = Literal["stop", "ask"]
FaultAction = Literal["retry", "skip", "abort"]
# Faults an operator can do something about: a device that failed, a disk that filled up.
RECOVERABLE: tuple[type[Exception], ...] = (DeviceError, DiskFullError, SessionWriteError)
# An operator may be away for a night; after that the campaign gives up (the devices are safe meanwhile).
DECISION_TIMEOUT_S = 12 * 3600
# How often the paused run looks for the operator's answer, whole wall seconds.
POLL_S = 2


class FaultDecision(RunInput):
    """The form a paused campaign shows: what to do about the fault it describes."""

    action: FaultAction = "retry"
    note: str = ""


@dataclass
class Site:
    """Where a campaign is: the block and the probe position being acquired."""

    block: str = ""
    position: int = -1

    @property
    def key(self) -> tuple[str, int]:
        return (self.block, self.position)


def describe(error: Exception, site: Site) -> str:
    """The form's text: what failed, where, the state of the rig, and what each choice does."""
    who = error.device if isinstance(error, DeviceError) else "the session's disk"
    where = f"at block {site.block}, probe position {site.position}" if site.position >= 0 else "while connecting the devices"
    return (f"**{who} failed** {where}: {error}\n\n"
            "The probe is lifted clear and the arm stopped. Fix the cause, then choose: **retry** (reconnect the devices, "
            "unlock a protective stop, redo this position), **skip** (go on without this position; a rerun can still "
            "acquire it) or **abort** (end the campaign; a rerun resumes it).")


def ask_operator(error: Exception, site: Site) -> FaultAction:
    """Pause the flow run with the fault form and return the operator's choice (``abort`` when nobody answers)."""
    from prefect import get_run_logger
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    get_run_logger().warning("fault at block %s position %d, waiting for the operator: %s", site.block, site.position, error)
    try:
        decision = pause_flow_run(wait_for_input=FaultDecision.with_initial_data(description=describe(error, site)),
                                  timeout=DECISION_TIMEOUT_S, poll_interval=POLL_S)
    except FlowPauseTimeout:
        return "abort"
    get_run_logger().warning("operator chose to %s block %s position %d%s", decision.action, site.block, site.position,
                             f" ({decision.note})" if decision.note else "")
    return decision.action
