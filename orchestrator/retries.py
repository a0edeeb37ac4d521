"""Retry policy for device steps: transient device faults retry with backoff, nothing else does."""

from __future__ import annotations

from typing import Any

from shearlab.devices.errors import DeviceError

# Backoff between attempts, seconds of wall time (Prefect schedules retries in wall time).
DEVICE_RETRY_DELAYS_S: list[float] = [1.0, 4.0]


def retry_transient_device_errors(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only a ``DeviceError`` marked transient (a dropped stream, a garbled record)."""
    try:
        state.result()
    except DeviceError as exc:
        return exc.transient
    except Exception:
        return False
    return False
