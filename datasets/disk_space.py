"""Room on the disk for a session: checked before each write, and a reserve that lets a failed write end
cleanly.

HDF5 cannot be closed safely after a write failed for want of space: its close flushes cached data and
metadata, fails again, and leaves the library half torn down, so the process crashes (a segfault in
``H5D_close`` from HDF5's own exit handler) long after the error. So the writer keeps two defences:
``ensure_free`` refuses a sequence the disk has no room for before any byte is written, and a
``SpaceReserve`` (a file of real, allocated blocks beside the session) is given back the moment a write
fails anyway (another process filled the disk meanwhile), which leaves HDF5 the room to flush and close.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from shearlab.datasets.errors import DiskFullError

MIB = 2**20
# Room beyond the data itself: HDF5 metadata (B-tree and heap growth, fixed-length text columns), the
# chunk cache's flush at close, and the contact-force samples of a sequence.
MARGIN_BYTES = 16 * MIB


def ensure_free(folder: Path, needed_bytes: int, *, what: str) -> None:
    """Raise ``DiskFullError`` naming ``folder`` unless it has ``needed_bytes`` plus the margin free."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes + MARGIN_BYTES:
        raise DiskFullError(folder, f"{free / MIB:.0f} MiB free, {what} needs {(needed_bytes + MARGIN_BYTES) / MIB:.0f} MiB "
                                    "(with a margin for the file's own bookkeeping): free space, then rerun to resume")


class SpaceReserve:
    """``nbytes`` of allocated disk at ``path`` until ``release``; ``DiskFullError`` if they cannot be had."""

    def __init__(self, path: Path, nbytes: int) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, nbytes)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DiskFullError(path.parent, f"no room to reserve {nbytes / MIB:.0f} MiB for writing safely "
                                                 f"({exc.strerror}): free space, then rerun to resume") from None
            raise
        os.close(fd)

    def release(self) -> None:
        """Give the space back (idempotent)."""
        self.path.unlink(missing_ok=True)
