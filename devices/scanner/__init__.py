"""The ultrasound scanner, reached through the shearlab scanner bridge (``WIRE.md``)."""

from shearlab.devices.scanner.bridge_client import FIRE_MIN_WALL_S, ScannerBridgeClient, ScannerRefusedError
from shearlab.devices.scanner.bridge_wire import DEFAULT_PORT, PROTOCOL_VERSION, ErrorCode, ScanRefused

__all__ = ["DEFAULT_PORT", "FIRE_MIN_WALL_S", "PROTOCOL_VERSION", "ErrorCode", "ScanRefused", "ScannerBridgeClient", "ScannerRefusedError"]
