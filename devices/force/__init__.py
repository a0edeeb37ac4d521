"""ATI force/torque sensors: the serial controller driver and the sensor calibrations."""

from shearlab.devices.force.ati_serial import STATUS_SATURATED, ATISerialSensor
from shearlab.devices.force.calibration import (
    NANO17_SI_12_012,
    NANO43_SI_36_05,
    FTCalibration,
    calibration_for,
)

__all__ = [
    "ATISerialSensor",
    "FTCalibration",
    "NANO17_SI_12_012",
    "NANO43_SI_36_05",
    "STATUS_SATURATED",
    "calibration_for",
]
