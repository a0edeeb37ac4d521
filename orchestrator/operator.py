"""Operator steps ("place cylinder 3 of batch B1"): done by a person, or by a stand-in.

On a twin (its control endpoint) or in the simulation, the rig's ``StandIn`` performs the step. On a
real rig the flow pauses
(``pause_flow_run(wait_for_input=...)``) until the operator confirms in the Prefect UI, or, when the
flow runs from an interactive terminal without a server, at a console prompt.
"""

from __future__ import annotations

from typing import Protocol

from prefect.input import RunInput

from shearlab.devices.stand_in import StandIn
from shearlab.protocols.phantoms import Cylinder


class OperatorAck(RunInput):
    """What the operator confirms in the UI."""

    done: bool = True
    note: str = ""


class Operator(Protocol):
    def place_cylinder(self, cylinder: Cylinder) -> None: ...

    def clear_indenter(self) -> None: ...

    def confirm(self, message: str) -> None:
        """A person checks something before the flow goes on (a protective stop, say)."""


class StandInOperator:
    """The twin or the simulation plays the operator."""

    def __init__(self, stand_in: StandIn) -> None:
        self.stand_in = stand_in

    def place_cylinder(self, cylinder: Cylinder) -> None:
        self.stand_in.place_cylinder(cylinder)

    def clear_indenter(self) -> None:
        self.stand_in.remove_cylinder()

    def confirm(self, message: str) -> None:
        """Nobody needs to look; the request is logged, naming who confirmed it."""
        from prefect import get_run_logger

        get_run_logger().warning("operator check (confirmed by the %s): %s", self.stand_in.name, message)


class PrefectOperator:
    """Pause the flow run until a person confirms the step."""

    def _ask(self, message: str) -> None:
        from prefect import get_run_logger
        from prefect.flow_runs import pause_flow_run

        # A warning: it reaches the terminal a flow runs from, as well as the UI.
        get_run_logger().warning("operator step: %s", message)
        ack = pause_flow_run(wait_for_input=OperatorAck.with_initial_data(description=message), timeout=24 * 3600)
        if ack is not None and not ack.done:
            raise RuntimeError(f"operator declined: {message} ({ack.note})")

    def place_cylinder(self, cylinder: Cylinder) -> None:
        self._ask(f"Place cylinder {cylinder.index + 1} of batch {cylinder.batch_id} ({cylinder.concentration_pct} %) "
                  "under the plate, lubricated.")

    def clear_indenter(self) -> None:
        self._ask("Remove the cylinder from the indentation rig.")

    def confirm(self, message: str) -> None:
        self._ask(message)


def operator_for(stand_in: StandIn | None) -> Operator:
    return StandInOperator(stand_in) if stand_in is not None else PrefectOperator()
