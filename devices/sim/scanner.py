"""The ultrasound scanner in process: the twin's ``ScannerModel`` (and through it the world's physics)
behind the ``Scanner`` interface.

As ``ScannerBridgeClient`` against the twin, minus the wire: refusals raise the same
``ScannerRefusedError`` with the bridge's code, a FIRE takes the sequence's acquisition time, and a cut
link fails the call that meets it (the next call reconnects, as the client does).
"""

from __future__ import annotations

from dataclasses import dataclass

from shearlab.devices.errors import DeviceConnectionError
from shearlab.devices.interfaces import DeviceStatus, ScannerIdentity, ScannerState, ScanResult
from shearlab.devices.scanner.bridge_client import ScannerRefusedError
from shearlab.devices.scanner.bridge_wire import ErrorCode, ScanRefused
from shearlab.devices.sim.clock import SimClock
from shearlab.devices.twin.scanner_model import ScannerModel
from shearlab.protocols.sequences import SequenceSpec


@dataclass
class ScannerLink:
    """The network link to one simulated scanner."""

    cut: bool = False


class SimScanner:
    """A ``Scanner`` on ``model``."""

    def __init__(self, model: ScannerModel, clock: SimClock, link: ScannerLink, *, name: str = "scanner") -> None:
        self.name = name
        self._model = model
        self._clock = clock
        self._link = link
        self._sequence: SequenceSpec | None = None
        self._sequence_id: str | None = None

    def status(self) -> DeviceStatus:
        state = self.read_state()
        return DeviceStatus(self.name, identity=str(self._model.identity), state=state.state, latency_ms=0.0)

    def identify(self) -> ScannerIdentity:
        self._check_link()
        return self._model.identity

    def read_state(self) -> ScannerState:
        self._check_link()
        return self._model.state()

    def configure(self, sequence: SequenceSpec) -> str:
        self._check_link()
        try:
            self._sequence_id = self._model.configure(sequence)
        except ScanRefused as refusal:
            raise self._refused(refusal) from refusal
        self._sequence = sequence
        return self._sequence_id

    def fire(self, *, push: bool = True) -> ScanResult:
        """Fire the configured sequence; the acquisition takes its frames' time plus the push."""
        if self._sequence is None or self._sequence_id is None:
            raise ScannerRefusedError(self.name, ErrorCode.NOT_CONFIGURED, "no sequence loaded: call configure(sequence) before fire()")
        self._check_link()
        try:
            result = self._model.fire(self._sequence_id, push)
        except ScanRefused as refusal:
            raise self._refused(refusal) from refusal
        imaging = self._sequence.imaging
        self._clock.sleep((1 + imaging.n_frames) / imaging.frame_rate_hz + result.push_duration_s)
        return result

    def close(self) -> None:
        """Nothing to close in process."""

    def _refused(self, refusal: ScanRefused) -> ScannerRefusedError:
        self._model.record_error(refusal.code, refusal.message)
        return ScannerRefusedError(self.name, refusal.code, refusal.message, retry_after_s=refusal.retry_after_s)

    def _check_link(self) -> None:
        if self._link.cut:
            self._link.cut = False
            raise DeviceConnectionError(self.name, "link to the simulated scanner lost (the next call reconnects)")
