"""One clock for every wait and timeout in drivers, flows and the twin.

Real hardware runs in real time. The digital twin runs on a virtual clock that advances
``speed`` virtual seconds per wall second, so that a campaign of many hours (80 positions x 6
blocks, 48 indentations at 0.01 mm/s) finishes in minutes. Drivers and flows only ever reason in
*virtual* (experiment) seconds; the clock converts to wall time where the operating system needs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Transport I/O (a socket reply, a serial line) takes wall time that does not shrink with the twin's
# speed factor; a 1 s virtual timeout at speed 1000 would be 1 ms of wall time, shorter than one
# scheduler tick. I/O timeouts therefore never drop below this many wall seconds.
MIN_IO_TIMEOUT_WALL_S = 0.5


@dataclass
class Clock:
    """A monotonic clock running ``speed`` times faster than the wall clock.

    ``Clock()`` is the real-time clock used with hardware; ``Clock(speed=S)`` follows a twin
    started with ``--speed S``. Virtual time starts at 0 when the clock is created.
    """

    speed: float = 1.0
    _wall_origin: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"clock speed must be > 0, got {self.speed!r}")

    def now(self) -> float:
        """Virtual seconds since the clock was created."""
        return (time.monotonic() - self._wall_origin) * self.speed

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time."""
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wall(self, seconds: float) -> float:
        """Wall seconds that ``seconds`` of virtual time take."""
        return seconds / self.speed

    def io_timeout(self, seconds: float) -> float:
        """Wall-clock timeout for one transport exchange that may take ``seconds`` virtual."""
        return max(self.wall(seconds), MIN_IO_TIMEOUT_WALL_S)

    def deadline(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` of virtual time from now."""
        return Deadline(self, self.now() + seconds)


@dataclass(frozen=True)
class Deadline:
    """A point in virtual time; ``expired()`` and ``remaining()`` read the owning clock."""

    clock: Clock
    at: float

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock.now())

    def expired(self) -> bool:
        return self.clock.now() >= self.at


REAL_TIME = Clock()
