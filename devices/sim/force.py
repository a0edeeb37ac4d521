"""An ATI force/torque sensor in process: the twin's ``FTSensorModel`` behind the ``ForceSensor`` interface.

As ``ATISerialSensor`` against the twin, minus the wire: a record takes one record period of the
controller, counts convert to newtons with the sensor's calibration, and a record the controller lost
shows as a gap in ``seq``. ``SensorLink`` carries the injected cable faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shearlab.devices.errors import DeviceConnectionError, DeviceProtocolError
from shearlab.devices.force.ati_serial import STATUS_SATURATED
from shearlab.devices.interfaces import DeviceStatus, WrenchSample
from shearlab.devices.sim.clock import SimClock
from shearlab.devices.twin.ft_sensor_model import FTSensorModel

# The controller's record rate (the serial twin streams at the same 200 Hz).
RECORD_PERIOD_S = 1 / 200


@dataclass
class SensorLink:
    """The cable of one simulated sensor: unplugged, or with garbage waiting on the line."""

    plugged: bool = True
    garbage_bytes: int = 0


class SimForceSensor:
    """A ``ForceSensor`` on ``model``."""

    def __init__(self, model: FTSensorModel, clock: SimClock, link: SensorLink, *, name: str) -> None:
        self.name = name
        self._model = model
        self._clock = clock
        self._link = link
        self._next_seq = 0

    def status(self) -> DeviceStatus:
        sample = self.read()
        state = "saturated" if sample.status & STATUS_SATURATED else "ok"
        identity = f"ATI {self._model.calibration.model} {self._model.calibration.calibration} (simulated)"
        return DeviceStatus(self.name, identity=identity, state=state, latency_ms=RECORD_PERIOD_S * 1e3)

    def configure(self, *, averaging: int = 1) -> None:
        self._check_link()
        self._model.set_averaging(averaging)

    def bias(self) -> None:
        self._check_link()
        self._clock.sleep(RECORD_PERIOD_S)
        self._model.bias()

    def unbias(self) -> None:
        self._check_link()
        self._model.unbias()

    def read(self) -> WrenchSample:
        """One record; ``seq`` counts single reads, gaps included."""
        self._check_link()
        self._clock.sleep(RECORD_PERIOD_S)
        return self._record()

    def stream(self, count: int) -> Iterator[WrenchSample]:
        """``count`` consecutive records, one per record period."""
        self._check_link()
        for _ in range(count):
            self._clock.sleep(RECORD_PERIOD_S)
            self._check_link()
            yield self._record()

    def close(self) -> None:
        """Nothing to close in process."""

    def _record(self) -> WrenchSample:
        gap = self._model.skip_dropped()
        counts, saturated, _ = self._model.next_records(1)
        force_n, torque_nmm = self._model.calibration.to_wrench(counts[0])
        seq = self._next_seq + gap
        self._next_seq = seq + 1
        status = STATUS_SATURATED if saturated[0] else 0
        return WrenchSample(seq=seq, t_s=self._clock.now(), force_n=force_n, torque_nmm=torque_nmm, status=status)

    def _check_link(self) -> None:
        if not self._link.plugged:
            raise DeviceConnectionError(self.name, "the simulated sensor's cable is unplugged")
        if self._link.garbage_bytes:
            n_bytes, self._link.garbage_bytes = self._link.garbage_bytes, 0
            raise DeviceProtocolError(self.name, f"garbled record ({n_bytes} bytes of line noise)")
