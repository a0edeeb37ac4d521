"""Field types shared by rig, plan and phantom files: names that become file names, cron strings,
host addresses, and the physical ranges more than one file states.

Every number of a config file is finite (``StrictModel`` refuses inf and NaN); these types add the range
a value may physically take, so a typo (``1e12``, a negative concentration) stops at load time, naming
the file and the field, before anything moves.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Annotated

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, Field

# Letters, digits, dot, dash, underscore; starts with a letter or digit: safe as a file name on every
# OS, in a Prefect deployment or lock name, and in a session id (``datasets.records.SessionInfo``).
_SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
SafeName = Annotated[str, Field(min_length=1, max_length=48, pattern=_SAFE_NAME)]

# Gelatin : water weight ratio, %: the paper casts 5-17.5 %; above ~30 % gelatin no longer dissolves.
ConcentrationPct = Annotated[float, Field(gt=0, le=30)]
# A coordinate on the table in the robot base frame, mm: the UR3 reaches 500 mm from its base.
ReachMm = Annotated[float, Field(ge=-500, le=500)]
# A force the rig can measure, N: the Nano43 on the probe saturates at 36 N.
ProbeForceN = Annotated[float, Field(gt=0, le=36)]
# A probe speed, m/s: 0.25 m/s is the collaborative TCP speed limit (ISO/TS 15066 guidance, UR's
# reduced mode default); nothing in a campaign needs more.
ProbeSpeedMS = Annotated[float, Field(gt=0, le=0.25)]


def _cron(expression: str) -> str:
    try:
        CronSim(expression, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(f"not a valid cron expression ({exc})") from None
    if len(expression.split()) != 5:
        raise ValueError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    return expression


# A five-field cron schedule, parsed when the file loads rather than when ``shearlab serve`` registers it.
Cron = Annotated[str, AfterValidator(_cron)]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.match(value):
            raise ValueError(f"{value!r} is neither an IP address nor a host name") from None
    return value


# An IP address or a DNS host name of a device on the lab network.
Host = Annotated[str, AfterValidator(_host)]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback(value: str) -> str:
    if not is_loopback(value):
        raise ValueError(f"{value!r} is not a loopback address: a twin started from a rig file serves this machine only "
                         "(127.0.0.x); to serve a network, start it by hand with `shearlab twin serve --allow-remote`")
    return value


# Where a twin started from a rig file listens: its servers can unlock a protective stop and inject faults.
LoopbackHost = Annotated[str, AfterValidator(_loopback)]
