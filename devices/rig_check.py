"""``shearlab rig check``: connect to each device of a rig in turn, read its status and, where it has one,
its force: each force sensor after a bias (README, safety step 3), the robot's TCP force."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import numpy as np

from shearlab.devices.connect import RigBackend, clock_for, device_factories
from shearlab.devices.errors import DeviceError
from shearlab.devices.interfaces import DEVICE_NAMES, DeviceName, ForceSensor, Robot
from shearlab.protocols.rig import Rig

# A biased sensor with nothing touching it reads its noise, a few mN. 0.02 N is a tenth of the 0.2 N
# contact force a campaign holds: a residual that large would shift every contact by 10 %.
NEAR_ZERO_N = 0.02
# Records averaged into a sensor's reading: one record's noise is a few counts (Nano17: 1/320 N a count).
READINGS = 16


@dataclass(frozen=True)
class DeviceCheck:
    """One device's row: what it says it is and how it is, or why it could not be reached.

    ``force_n`` is the magnitude of a force sensor's reading after a bias, or of the robot's TCP force;
    ``None`` for devices without one. ``warning`` says what to look at before a campaign.
    """

    device: DeviceName
    identity: str = ""
    state: str = ""
    latency_ms: float | None = None
    force_n: float | None = None
    warning: str | None = None
    error: str | None = None


def check_rig(rig: Rig, backend: RigBackend = None) -> list[DeviceCheck]:
    """One ``DeviceCheck`` per device of the rig, in ``DEVICE_NAMES`` order; a failing device does not stop the others."""
    factories = device_factories(rig, backend, clock_for(rig, backend))
    rows: list[DeviceCheck] = []
    for name in DEVICE_NAMES:
        started = time.perf_counter()
        try:
            device = factories.of(name)()
        except DeviceError as exc:
            rows.append(DeviceCheck(name, error=exc.message))
            continue
        except (OSError, ValueError) as exc:
            rows.append(DeviceCheck(name, error=f"cannot connect: {exc}"))
            continue
        try:
            status = device.status()
            latency_ms = status.latency_ms if status.latency_ms > 0 else (time.perf_counter() - started) * 1e3
            force_n, warning = _force(name, device)
            rows.append(DeviceCheck(name, status.identity, status.state, latency_ms, force_n, warning))
        except DeviceError as exc:
            rows.append(DeviceCheck(name, error=exc.message))
        finally:
            device.close()
    return rows


def _force(name: DeviceName, device: object) -> tuple[float | None, str | None]:
    if name in ("probe_ft", "indenter_ft"):
        sensor = cast(ForceSensor, device)
        sensor.bias()
        force = float(np.linalg.norm(np.mean([sensor.read().force_n for _ in range(READINGS)], axis=0)))
        if force > NEAR_ZERO_N:
            return force, f"reads {force:.3f} N after a bias (limit {NEAR_ZERO_N} N): drifting, or loaded while biased"
        return force, None
    if name == "robot":
        return float(np.linalg.norm(cast(Robot, device).tcp_force()[:3])), None
    return None, None
