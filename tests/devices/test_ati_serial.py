"""The ATI serial F/T driver against its twin, through a real pseudo-terminal and pyserial.

Tolerances: the twin's noise is one count (one resolution step) per raw sample unless a test says
otherwise, so with ``SA 16`` one record has a noise std of 1/4 count before rounding; "within two
counts" is then an 8-sigma bound, and a mean of ten records within half a count is a 6-sigma bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import serial
from device_contract import check_force_sensor
from scipy.stats import norm

from shearlab.devices.clock import Clock
from shearlab.devices.errors import (
    DeviceConnectionError,
    DeviceFaultError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from shearlab.devices.force import (
    NANO17_SI_12_012,
    NANO43_SI_36_05,
    STATUS_SATURATED,
    ATISerialSensor,
    calibration_for,
)
from shearlab.devices.twin.ati_controller import ATISerialTwin
from shearlab.devices.twin.ft_sensor_model import FTSensorModel

pytestmark = pytest.mark.timeout(30)

NAME = "indenter_ft"
RATE_HZ = 200.0


@dataclass
class Load:
    """True load on the sensor, changeable while the twin runs."""

    force_n: np.ndarray = field(default_factory=lambda: np.zeros(3))
    torque_nmm: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        return self.force_n.copy(), self.torque_nmm.copy()


@dataclass
class Bench:
    twin: ATISerialTwin
    sensor: ATISerialSensor
    load: Load
    clock: Clock


@pytest.fixture
def make_bench() -> Iterator[Callable[..., Bench]]:
    opened: list[tuple[ATISerialTwin, ATISerialSensor]] = []

    def make(
        sensor: str = "nano17",
        *,
        force_n: tuple[float, float, float] = (0.0, 0.0, 0.0),
        torque_nmm: tuple[float, float, float] = (0.0, 0.0, 0.0),
        speed: float = 5.0,
        noise_counts: float = 1.0,
        link_path: Path | None = None,
    ) -> Bench:
        clock = Clock(speed=speed)
        load = Load(np.array(force_n, float), np.array(torque_nmm, float))
        model = FTSensorModel(sensor, load, seed=7, noise_counts=noise_counts)
        twin = ATISerialTwin(model, clock, seed=7, sample_rate_hz=RATE_HZ, link_path=link_path)
        twin.start()
        driver = ATISerialSensor(twin.device_path, sensor=sensor, clock=clock, name=NAME)
        opened.append((twin, driver))
        driver.connect()
        return Bench(twin, driver, load, clock)

    yield make
    for twin, driver in opened:
        driver.close()
        twin.close()


@pytest.fixture
def bench(make_bench: Callable[..., Bench]) -> Bench:
    return make_bench()


# ----------------------------------------------------------------------------- calibration


def test_calibrations_follow_the_datasheets() -> None:
    assert calibration_for("Nano17") is NANO17_SI_12_012
    assert NANO17_SI_12_012.resolution_n == pytest.approx(1 / 320)
    assert NANO17_SI_12_012.range_counts().tolist() == [3840, 3840, 5440, 7680, 7680, 7680]
    assert NANO43_SI_36_05.range_force_n == (36.0, 36.0, 36.0)
    assert NANO43_SI_36_05.range_torque_nmm == (500.0, 500.0, 500.0)
    force_n, torque_nmm = NANO43_SI_36_05.to_wrench(np.array([128, -256, 64, 32, 0, -16]))
    assert force_n.tolist() == [1.0, -2.0, 0.5]
    assert torque_nmm.tolist() == [1.0, 0.0, -0.5]
    with pytest.raises(ValueError, match="nano17"):
        calibration_for("mini40")


# ------------------------------------------------------------------------------ conversation


def test_configure_sends_the_exact_frames(bench: Bench) -> None:
    bench.sensor.configure(averaging=4)
    # The leading CR is connect() resynchronising on the prompt.
    assert bench.twin.received == b"\rCD A\rCD R\rCV 3F\rSA 4\r"


def test_driver_keeps_the_force_sensor_contract(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench(force_n=(0.0, 0.0, 1.25))
    check_force_sensor(bench.sensor, np.array([0.0, 0.0, 1.25]), resolution_n=1 / 320)


@pytest.mark.parametrize("averaging", [0, 17, -1, 2.5, True, "4"])
def test_invalid_averaging_sends_nothing(bench: Bench, averaging: object) -> None:
    before = bench.twin.received
    with pytest.raises(ValueError, match="averaging"):
        bench.sensor.configure(averaging=averaging)  # type: ignore[arg-type]
    assert bench.twin.received == before


@pytest.mark.parametrize("count", [0, -3, 1.5])
def test_invalid_stream_count_sends_nothing(bench: Bench, count: object) -> None:
    before = bench.twin.received
    with pytest.raises(ValueError, match="count"):
        bench.sensor.stream(count)  # type: ignore[arg-type]
    assert bench.twin.received == before


def test_invalid_constructor_arguments_open_nothing() -> None:
    with pytest.raises(ValueError, match="unknown F/T sensor"):
        ATISerialSensor("/dev/null", sensor="gamma", clock=Clock(), name=NAME)
    with pytest.raises(ValueError, match="timeout_s"):
        ATISerialSensor("/dev/null", sensor="nano17", clock=Clock(), name=NAME, timeout_s=0)


def test_missing_port_is_a_connection_error() -> None:
    sensor = ATISerialSensor("/dev/shearlab-no-such-port", sensor="nano43", clock=Clock(), name="probe_ft")
    with pytest.raises(DeviceConnectionError) as caught:
        sensor.connect()
    assert caught.value.device == "probe_ft"


def test_twin_answers_unknown_and_unsupported_commands_with_an_error_line(bench: Bench) -> None:
    bench.sensor.close()
    with serial.Serial(bench.twin.device_path, timeout=2) as port:
        for command, reply in [
            (b"XY", b"XY\r\nERROR: unknown command\r\n>"),
            (b"CD B", b"CD B\r\nERROR: binary output not supported\r\n>"),
            (b"SA 17", b"SA 17\r\nERROR: invalid argument\r\n>"),
            (b"CV 7", b"CV 7\r\n>"),
        ]:
            port.write(command + b"\r")
            assert port.read_until(b">") == reply
        port.write(b"QR\r")
        frame = port.read_until(b">")
    # With axis mask 7 only the forces follow the status word.
    record = frame.split(b"\r\n")[1]
    assert len(record.split(b",")) == 4


def test_wrong_field_count_is_a_protocol_error_and_configure_fixes_it(bench: Bench) -> None:
    bench.sensor.close()
    with serial.Serial(bench.twin.device_path, timeout=2) as port:
        port.write(b"CV 7\r")
        assert port.read_until(b">").endswith(b">")
    bench.sensor.connect()
    with pytest.raises(DeviceProtocolError, match="garbled record"):
        bench.sensor.read()
    bench.sensor.configure()
    assert bench.sensor.read().force_n.shape == (3,)


def test_refused_command_is_a_fault_naming_the_device(bench: Bench) -> None:
    with pytest.raises(DeviceFaultError) as caught:
        bench.sensor._exchange("CD B")
    assert caught.value.device == NAME
    assert "binary output not supported" in caught.value.message


# ------------------------------------------------------------------------------ load physics


@pytest.mark.parametrize(
    ("sensor", "force_n", "torque_nmm"),
    [
        ("nano17", (-0.5, 0.25, 1.25), (3.0, -2.0, 10.0)),
        ("nano43", (0.2, -1.0, 5.0), (40.0, 0.0, -12.5)),
    ],
)
def test_known_load_reads_back_within_the_resolution(
    make_bench: Callable[..., Bench], sensor: str, force_n: tuple, torque_nmm: tuple
) -> None:
    bench = make_bench(sensor, force_n=force_n, torque_nmm=torque_nmm)
    cal = calibration_for(sensor)
    bench.sensor.configure(averaging=16)
    samples = [bench.sensor.read() for _ in range(10)]
    force = np.array([s.force_n for s in samples])
    torque = np.array([s.torque_nmm for s in samples])
    assert np.all(np.abs(force - force_n) <= 2 * cal.resolution_n)
    assert np.all(np.abs(torque - torque_nmm) <= 2 * cal.resolution_nmm)
    np.testing.assert_allclose(force.mean(axis=0), force_n, atol=0.5 * cal.resolution_n)
    np.testing.assert_allclose(torque.mean(axis=0), torque_nmm, atol=0.5 * cal.resolution_nmm)
    assert [s.seq for s in samples] == list(range(10))
    assert all(s.status == 0 for s in samples)


def test_bias_zeroes_the_load_and_unbias_restores_it(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench(force_n=(0.0, 0.0, 1.25), torque_nmm=(0.0, 5.0, 0.0))
    resolution_n = NANO17_SI_12_012.resolution_n
    bench.sensor.configure(averaging=16)
    bench.sensor.bias()
    biased = [bench.sensor.read() for _ in range(10)]
    # Reading minus bias reading: two independent 1/4-count noises, std 0.35 count.
    assert max(np.abs(s.force_n).max() for s in biased) <= 2 * resolution_n
    bench.sensor.unbias()
    assert bench.sensor.read().force_n[2] == pytest.approx(1.25, abs=2 * resolution_n)
    assert bench.twin.received.endswith(b"SB\r" + b"QR\r" * 10 + b"SU\rQR\r")


@pytest.mark.parametrize(
    ("sensor", "force_n", "torque_nmm", "expect_force_n", "expect_torque_nmm"),
    [
        ("nano17", (-100.0, 5.0, 40.0), (500.0, 0.0, -130.0), (-12.0, 5.0, 17.0), (120.0, 0.0, -120.0)),
        ("nano43", (50.0, -36.5, 0.0), (600.0, -499.0, 0.0), (36.0, -36.0, 0.0), (500.0, -499.0, 0.0)),
    ],
)
def test_readings_saturate_at_the_range(
    make_bench: Callable[..., Bench],
    sensor: str,
    force_n: tuple,
    torque_nmm: tuple,
    expect_force_n: tuple,
    expect_torque_nmm: tuple,
) -> None:
    bench = make_bench(sensor, force_n=force_n, torque_nmm=torque_nmm)
    cal = calibration_for(sensor)
    bench.sensor.configure(averaging=16)
    sample = bench.sensor.read()
    assert sample.status & STATUS_SATURATED
    np.testing.assert_allclose(sample.force_n, expect_force_n, atol=2 * cal.resolution_n)
    np.testing.assert_allclose(sample.torque_nmm, expect_torque_nmm, atol=2 * cal.resolution_nmm)
    assert bench.sensor.status().state == "saturated"


def _quantised_std(sigma: float, offset: float) -> float:
    """Exact std of ``round(offset + N(0, sigma^2))``: Gaussian noise seen through integer counts."""
    k = np.arange(np.floor(offset - 10 * sigma) - 1, np.ceil(offset + 10 * sigma) + 2)
    p = norm.cdf((k + 0.5 - offset) / sigma) - norm.cdf((k - 0.5 - offset) / sigma)
    mean = np.sum(p * k)
    return float(np.sqrt(np.sum(p * (k - mean) ** 2)))


@pytest.mark.parametrize("noise_counts", [1.0, 8.0])
def test_averaging_reduces_the_noise_by_sqrt_n(make_bench: Callable[..., Bench], noise_counts: float) -> None:
    # 0.3 count off the integer grid, so rounding neither hides nor inflates the noise by symmetry.
    offset_counts = 0.3
    bench = make_bench(force_n=(offset_counts / 320, 0.0, 0.0), speed=100.0, noise_counts=noise_counts)
    n_records = 800
    measured = {}
    for averaging in (1, 4, 16):
        bench.sensor.configure(averaging=averaging)
        fx_counts = np.array([s.force_n[0] * 320 for s in bench.sensor.stream(n_records)])
        measured[averaging] = fx_counts.std(ddof=1)
        expected = _quantised_std(noise_counts / np.sqrt(averaging), offset_counts)
        # Relative standard error of a std from 800 samples is 1/sqrt(2 * 799) = 2.5 %; allow 4 SE.
        assert measured[averaging] == pytest.approx(expected, rel=0.10), averaging
    if noise_counts >= 8.0:
        # Far above the one-count rounding, the std falls by sqrt(16) = 4 (rounding adds 1 %).
        assert measured[1] / measured[16] == pytest.approx(4.0, rel=0.12)


# ----------------------------------------------------------------------------------- streams


def test_stream_gives_consecutive_records_at_the_virtual_rate(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench(force_n=(0.0, 0.0, 1.25), speed=4.0)
    n_records = 400
    t_start = bench.clock.now()
    samples = list(bench.sensor.stream(n_records))
    assert [s.seq for s in samples] == list(range(n_records))
    t_s = np.array([s.t_s for s in samples])
    # Record k closes the slot ending (k + 1) / rate after QS and is never sent before it.
    slot_end = t_start + (np.arange(n_records) + 1) / RATE_HZ
    assert np.all(t_s >= slot_end - 1e-6)
    # Not slower than two thirds of the rate either (generous: the CI machine is shared).
    assert n_records / (t_s[-1] - t_start) > RATE_HZ * 2 / 3
    # Stopped with one CR, after which the controller is idle again.
    assert bench.twin.received.endswith(b"QS\r\r")
    assert bench.sensor.read().force_n[2] == pytest.approx(1.25, abs=5 / 320)


def test_stream_is_stopped_when_the_consumer_leaves_early(bench: Bench) -> None:
    for sample in bench.sensor.stream(1000):
        if sample.seq == 3:
            break
    assert bench.twin.received.endswith(b"QS\r\r")
    assert bench.sensor.read().seq == 0


def test_taking_exactly_count_records_leaves_the_controller_idle(bench: Bench) -> None:
    records = bench.sensor.stream(5)
    taken = [next(records) for _ in range(5)]
    assert [s.seq for s in taken] == [0, 1, 2, 3, 4]
    assert bench.twin.received.endswith(b"QS\r\r")
    assert bench.sensor.status().state == "ok"


def test_dropped_stream_records_show_as_a_gap(bench: Bench) -> None:
    records = bench.sensor.stream(60)
    seqs = [next(records).seq for _ in range(10)]
    bench.twin.drop_records(3)
    seqs += [s.seq for s in records]
    steps = np.diff(seqs)
    assert sorted(steps.tolist())[-1] == 4 and np.count_nonzero(steps != 1) == 1
    assert seqs[-1] == 60 - 1 + 3
    assert bench.sensor.dropped_records == 3


def test_dropped_records_between_single_reads_show_as_a_gap(bench: Bench) -> None:
    assert bench.sensor.read().seq == 0
    bench.twin.drop_records(2)
    assert bench.sensor.read().seq == 3
    assert bench.sensor.read().seq == 4
    assert bench.sensor.dropped_records == 2


# ------------------------------------------------------------------------------------ faults


def test_garbage_in_a_stream_is_a_protocol_error_and_the_next_read_recovers(
    make_bench: Callable[..., Bench],
) -> None:
    bench = make_bench(force_n=(0.0, 0.0, 1.25))
    records = bench.sensor.stream(400)
    for _ in range(5):
        next(records)
    bench.twin.inject_garbage(16)
    with pytest.raises(DeviceProtocolError) as caught:
        for _ in records:
            pass
    assert caught.value.device == NAME
    assert caught.value.message.startswith("garbled record b")  # the offending bytes are quoted
    assert caught.value.transient
    assert bench.sensor.read().force_n[2] == pytest.approx(1.25, abs=5 / 320)
    # The garbled record was reported as an error, not again as a dropped record.
    assert bench.sensor.dropped_records == 0


def test_line_noise_between_commands_is_discarded(make_bench: Callable[..., Bench]) -> None:
    bench = make_bench(force_n=(0.0, 0.0, 1.25))
    bench.twin.inject_garbage(32)
    assert bench.sensor.read().force_n[2] == pytest.approx(1.25, abs=5 / 320)


def test_unplugged_sensor_is_a_connection_error_without_waiting(bench: Bench) -> None:
    bench.sensor.read()
    bench.twin.unplug()
    started = time.monotonic()
    with pytest.raises(DeviceConnectionError) as caught:
        bench.sensor.read()
    assert time.monotonic() - started < 0.4  # well below the 0.5 s I/O timeout: no waiting
    assert caught.value.device == NAME


def test_unplug_during_a_stream_is_a_connection_error(bench: Bench) -> None:
    records = bench.sensor.stream(1000)
    next(records)
    bench.twin.unplug()
    started = time.monotonic()
    with pytest.raises(DeviceConnectionError):
        for _ in records:
            pass
    assert time.monotonic() - started < 2.0


def test_replug_keeps_a_linked_path_and_the_settings(make_bench: Callable[..., Bench], tmp_path) -> None:
    bench = make_bench(force_n=(0.0, 0.0, 1.25), link_path=tmp_path / "ttyATI0")
    # The fixture's driver opened the link path, which is what a lab's rig file names.
    assert bench.twin.device_path == str(tmp_path / "ttyATI0")
    bench.sensor.bias()
    bench.twin.unplug()
    with pytest.raises(DeviceConnectionError):
        bench.sensor.read()
    bench.sensor.close()
    assert bench.twin.replug() == str(tmp_path / "ttyATI0")
    bench.sensor.connect()
    # The bias survives the cable: the controller kept power.
    assert abs(bench.sensor.read().force_n[2]) <= 5 / 320


def test_silent_controller_is_a_timeout(bench: Bench) -> None:
    bench.twin.set_responsive(False)
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError) as caught:
        bench.sensor.read()
    elapsed = time.monotonic() - started
    # 0.5 s virtual at speed 5 is 0.1 s wall, raised to the clock's 0.5 s floor for transport I/O.
    assert 0.45 <= elapsed < 2.0
    assert caught.value.device == NAME
    bench.twin.set_responsive(True)
    time.sleep(0.2)  # the late answer to the lost QR arrives, and the next command discards it
    assert bench.sensor.read().force_n.shape == (3,)


def test_status_reports_identity_state_and_latency(bench: Bench) -> None:
    status = bench.sensor.status()
    assert status.name == NAME
    assert "Nano17" in status.identity and "SI-12-0.12" in status.identity
    assert status.state == "ok"
    assert status.latency_ms > 0
    bench.sensor.close()
    assert bench.sensor.status().state == "disconnected"
