"""Simulated devices in process: every device interface on the digital twin's models, no sockets.

Selected by a rig file whose devices say ``driver = "sim"`` (``rigs/sim.toml``); they run on a
``SimClock`` that advances only when someone waits, so procedures and whole flows run in seconds and
the same calls give the same numbers. The wire-level twin (``shearlab.devices.twin``) stays the test
bed of the real client libraries; this is the test bed of what sits above them.
"""

from shearlab.devices.sim.clock import SimClock
from shearlab.devices.sim.force import SimForceSensor
from shearlab.devices.sim.hexapod import SimHexapod
from shearlab.devices.sim.rig import SimulatedRig
from shearlab.devices.sim.robot import SimRobot
from shearlab.devices.sim.scanner import SimScanner

__all__ = ["SimClock", "SimForceSensor", "SimHexapod", "SimRobot", "SimScanner", "SimulatedRig"]
