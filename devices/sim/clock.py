"""Virtual time for the in-process simulation: it moves only when someone waits.

A procedure's sleeps and every simulated device's own latency (a record period, a controller cycle)
advance it; computation between calls takes no virtual time. The same calls therefore give the same
times on any machine, and a campaign of virtual hours runs as fast as its Python does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from shearlab.devices.clock import Clock

# Long sleeps advance in steps of at most this, so that listeners (the simulated robot's keep-alive)
# act within a step, as a thread polling in real time would. Well under the 1 s watchdog period.
MAX_STEP_S = 0.05


class SimClock(Clock):
    """A ``Clock`` at speed 1 whose ``now()`` advances only through ``sleep()``; thread-safe."""

    def __init__(self) -> None:
        super().__init__(speed=1.0)
        self._t = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        """Advance virtual time by ``seconds``, telling every listener after each step."""
        remaining = float(seconds)
        while remaining > 0:
            step = min(remaining, MAX_STEP_S)
            remaining -= step
            with self._lock:
                self._t += step
                now = self._t
                listeners = list(self._listeners)
            for listener in listeners:
                listener(now)

    def listen(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(now)`` after every step of virtual time."""
        with self._lock:
            self._listeners.append(listener)

    def forget(self, listener: Callable[[float], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
