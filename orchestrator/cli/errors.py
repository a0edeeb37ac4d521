"""One error handler for every command: an exit code per kind of problem and one line that names the
file or device, never a traceback for a problem the user can fix (``--debug`` shows it anyway).

| code | meaning |
| --- | --- |
| 0 | done |
| 1 | unexpected error: a bug to report (``--debug`` prints the traceback) |
| 2 | usage: an unknown command or option, a bad option value, an output that is an input or exists without --force |
| 3 | configuration: a rig, plan, world or endpoints file is missing or invalid, or an extra is not installed |
| 4 | device: a device cannot be reached, refused a command or reports a fault; ``rig check`` found one down |
| 5 | data: a session, split or checkpoint file is missing or damaged; ``dataset check`` found a problem |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

from enum import IntEnum

from shearlab.datasets.errors import DataFileError
from shearlab.devices.errors import DeviceError
from shearlab.protocols.config_files import ConfigFileError
from shearlab.protocols.output_files import OutputFileError

# The optional dependencies a command may need, and the extra that installs them.
EXTRAS = {"torch": "train"}


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG = 3
    DEVICE = 4
    DATA = 5
    INTERRUPTED = 130


class UserError(Exception):
    """A problem the user can fix, found by the command line itself; ``code`` says which kind."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an exception that ended a command."""
    if isinstance(exc, UserError):
        return exc.code, str(exc)
    if isinstance(exc, OutputFileError):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, ConfigFileError):
        return ExitCode.CONFIG, str(exc)
    if isinstance(exc, DeviceError):
        return ExitCode.DEVICE, str(exc)
    if isinstance(exc, DataFileError):
        return ExitCode.DATA, str(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name in EXTRAS:
        return ExitCode.CONFIG, (f"this command needs {exc.name}, which this install lacks: "
                                 f"pip install 'shearlab[{EXTRAS[exc.name]}]' (README, Installing)")
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted"
    if isinstance(exc, OSError) and exc.filename is not None:
        return ExitCode.DATA, f"{exc.filename}: {exc.strerror or exc}"
    return ExitCode.UNEXPECTED, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
