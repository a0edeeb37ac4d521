"""What a device of a rig *is*: the address that reaches it, whatever the rig file calls itself.

Two rig files that name the same robot differently still drive one arm, so exclusive use (the device
locks of ``orchestrator.locks``) is keyed by this identity: a UR controller by its host and RTDE port, a
hexapod controller by its TCP address or serial port, a force sensor by its serial port, a scanner
bridge by its address, and every device a twin serves by the twin's host. Host names are resolved, so
``localhost`` and ``127.0.0.1`` are one machine. Simulated devices live inside one process and belong to
nobody else: they have no identity to share.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from shearlab.devices.endpoints import Endpoints
from shearlab.devices.interfaces import DeviceName
from shearlab.protocols.rig import Rig

# ur_rtde reaches a UR controller on fixed ports; RTDE's stands for all three.
UR_RTDE_PORT = 30004


@dataclass(frozen=True)
class DeviceIdentity:
    """``kind`` of link and ``address`` (``host:port`` or a serial port path) of one device."""

    device: DeviceName
    kind: str
    address: str

    def __str__(self) -> str:
        return f"{self.kind} {self.address}"


def device_identity(rig: Rig, device: DeviceName, endpoints: Endpoints | None = None) -> DeviceIdentity | None:
    """The identity of ``rig``'s ``device``; ``None`` for a simulated device.

    The rig file's own address wins, as it does when the device is opened (``devices.connect``); a device
    the file leaves to a twin (``[twin]``, or a running twin's ``endpoints``) is that twin's.
    """
    if device in rig.simulated() or (device == "scanner" and rig.sim is not None):
        return None
    own = _own_address(rig, device)
    if own is not None:
        return DeviceIdentity(device, *own)
    twin_host = endpoints.robot.host if endpoints is not None else rig.twin.host if rig.twin is not None else None
    if twin_host is None:
        raise ValueError(f"rig {rig.name!r}: {device} has no address in the rig file and no twin provides one")
    if device == "robot":
        # A twin's UR controller listens on the UR's own fixed ports: it is the controller at that host.
        return DeviceIdentity(device, "UR controller", f"{_resolved(twin_host)}:{UR_RTDE_PORT}")
    return DeviceIdentity(device, f"twin {device} at", _resolved(twin_host))


def _own_address(rig: Rig, device: DeviceName) -> tuple[str, str] | None:
    if device == "robot" and rig.robot.host is not None:
        return "UR controller", f"{_resolved(str(rig.robot.host))}:{UR_RTDE_PORT}"
    if device == "hexapod":
        cfg = rig.hexapod
        if cfg.driver == "pi_gcs_serial" and cfg.serial is not None:
            return "serial port", cfg.serial
        if cfg.driver == "pi_gcs_tcp" and cfg.host is not None:
            return "GCS controller", f"{_resolved(cfg.host)}:{cfg.port}"
    if device in ("probe_ft", "indenter_ft"):
        serial = rig.probe_ft.serial if device == "probe_ft" else rig.indenter_ft.serial
        if serial is not None:
            return "serial port", serial
    if device == "scanner" and rig.scanner is not None and rig.scanner.host is not None and rig.scanner.port is not None:
        return "scanner bridge", f"{_resolved(rig.scanner.host)}:{rig.scanner.port}"
    return None


def _resolved(host: str) -> str:
    """The IPv4 address of ``host`` (a name, or an address already); the name itself when it does not resolve."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host
