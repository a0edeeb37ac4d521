"""Bounds every twin server keeps, whoever connects: connections, message sizes, time to finish a
message, CPU per connection, and who may unlock or inject faults when the twin serves a network.

A twin listens on loopback unless started with ``--allow-remote``; its ports speak real device
protocols that can move an arm and unlock a protective stop, so a client that sends garbage, floods,
or trickles a byte at a time must cost the twin a bounded amount and lose its connection, while the
real clients stay served. Each server applies the same rules through this module:

- at most ``MAX_CONNECTIONS`` clients per port; one more is closed at once (``ConnectionSlots``);
- a line or message longer than the protocol's own limit closes the connection (``LineReader``);
- a message once begun must arrive whole within ``PARTIAL_MESSAGE_S`` of wall time;
- a connection whose requests burn more than ``CPU_SHARE`` of a core, beyond a ``CPU_BURST_S`` burst,
  is closed (``CpuBudget``).

Limits are wall time: they bound the twin's resources, not an experiment step.
"""

from __future__ import annotations

import hmac
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A rig's clients open a few connections per port (ur_rtde: one RTDE link for receive, one for control;
# a monitor or two); 16 leaves room for several campaigns' worth of tools, and bounds threads and fds.
MAX_CONNECTIONS = 16
# Real clients write a message in one go; a message begun and not finished in 10 s is a stalled or
# hostile peer holding a connection slot.
PARTIAL_MESSAGE_S = 10.0
# Per-connection CPU: a real client's requests cost microseconds each (a campaign's busiest link, RTDE
# at 125-500 Hz, stays under 5 % of a core); a quarter of a core sustained, after a 2 s burst, is a flood.
CPU_SHARE = 0.25
CPU_BURST_S = 2.0


class Offender(Exception):
    """A client broke a bound; its connection is closed (the message says which bound)."""


class ConnectionSlots:
    """A count of open connections with a ceiling; ``take`` refuses one more."""

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._open -= 1

    @property
    def open(self) -> int:
        with self._lock:
            return self._open


class CpuBudget:
    """CPU seconds a connection may spend: refills at ``share`` per wall second up to ``burst_s``.

    ``charge`` the thread CPU time a request took (``time.thread_time`` around it); ``Offender`` once
    the connection has spent more than it earned.
    """

    def __init__(self, share: float = CPU_SHARE, burst_s: float = CPU_BURST_S) -> None:
        self.share, self.burst_s = share, burst_s
        self._left_s = burst_s
        self._at = time.monotonic()

    def charge(self, cpu_s: float) -> None:
        now = time.monotonic()
        self._left_s = min(self.burst_s, self._left_s + (now - self._at) * self.share) - cpu_s
        self._at = now
        if self._left_s < 0:
            raise Offender(f"used more than {self.share:.0%} of a core")

    @contextmanager
    def metered(self) -> Iterator[None]:
        """Charge the block's thread CPU time, whether it succeeds or fails (garbage costs too)."""
        start = time.thread_time()
        try:
            yield
        finally:
            self.charge(time.thread_time() - start)


class LineReader:
    """Lines from a connection, each at most ``limit`` bytes, each whole within ``PARTIAL_MESSAGE_S``.

    Between lines the client may stay quiet as long as it likes; once a line has begun it must end in
    time. ``Offender`` for a line too long or too slow; the rest of it is never buffered.
    """

    def __init__(self, conn: socket.socket, limit: int) -> None:
        self.conn, self.limit = conn, limit
        self._buffer = bytearray()

    def next_line(self) -> bytes | None:
        """The next line without its LF; ``None`` when the client has closed the connection."""
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > self.limit:
                raise Offender(f"line longer than {self.limit} bytes")
            self.conn.settimeout(PARTIAL_MESSAGE_S if self._buffer else None)
            try:
                chunk = self.conn.recv(4096)
            except TimeoutError:
                raise Offender(f"line not finished within {PARTIAL_MESSAGE_S:.0f} s") from None
            if not chunk:
                return None
            self._buffer.extend(chunk)
        if end > self.limit:
            raise Offender(f"line longer than {self.limit} bytes")
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line


def token_matches(expected: str | None, given: object) -> bool:
    """Whether ``given`` is the twin's token (always, when the twin has none: it serves loopback only)."""
    if expected is None:
        return True
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())
