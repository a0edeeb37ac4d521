"""Robot drivers: the UR arm through ``ur_rtde``."""

from shearlab.devices.robot.ur_rtde import URRobot

__all__ = ["URRobot"]
