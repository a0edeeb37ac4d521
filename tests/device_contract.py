"""What every implementation of a device interface must do, checked by behaviour: the real drivers
against their twins and the simulated devices run the same checks.

A ``typing.Protocol`` only names methods; these call them and look at what comes back and what the
device did.
"""

from __future__ import annotations

import numpy as np
import pytest

from shearlab.devices.interfaces import ForceSensor, Hexapod, Robot, Scanner
from shearlab.protocols.sequences import SequenceSpec


def check_robot(robot: Robot, home: np.ndarray) -> None:
    """From rest at ``home`` (clear of anything): a short move arrives, a velocity command moves the
    probe along it until ``stop()``, the watchdog can be armed and fed; the arm ends back at ``home``."""
    assert not robot.is_protective_stopped()
    pose = robot.tcp_pose()
    assert pose.shape == (6,) and np.all(np.isfinite(pose))
    target = home.copy()
    target[0] += 0.01
    robot.move_linear(target, speed_m_s=0.05, accel_m_s2=0.5)
    np.testing.assert_allclose(robot.tcp_pose()[:3], target[:3], atol=1e-6)
    robot.speed_linear(np.array([-0.01, 0, 0, 0, 0, 0]), accel_m_s2=0.5)
    robot.kick_watchdog()
    robot.stop()
    stopped = robot.tcp_pose()
    assert stopped[0] < target[0] - 1e-6, "the velocity command moved nothing"
    robot.set_watchdog(1.0)
    robot.kick_watchdog()
    robot.move_linear(home, speed_m_s=0.05, accel_m_s2=0.5)
    np.testing.assert_allclose(robot.tcp_pose()[:3], home[:3], atol=1e-6)
    assert not robot.is_protective_stopped()
    assert robot.status().name == robot.name


def check_force_sensor(sensor: ForceSensor, load_n: np.ndarray, *, resolution_n: float) -> None:
    """Under a constant ``load_n`` (3,): reads see it, a bias zeroes it, records count up one by one."""
    sensor.configure(averaging=4)
    sensor.unbias()
    first = sensor.read()
    assert first.force_n.shape == (3,) and first.torque_nmm.shape == (3,)
    np.testing.assert_allclose(first.force_n, load_n, atol=4 * resolution_n)
    sensor.bias()
    streamed = list(sensor.stream(3))
    assert len(streamed) == 3
    assert [s.seq for s in streamed] == list(range(streamed[0].seq, streamed[0].seq + 3))
    assert all(np.all(np.abs(s.force_n) <= 4 * resolution_n) for s in streamed)
    later = sensor.read()
    assert later.seq > first.seq and later.t_s >= first.t_s
    assert sensor.status().name == sensor.name


def check_hexapod(hexapod: Hexapod) -> None:
    """Referenced, a move arrives where it was sent, a relative move adds to it, ``halt`` is harmless."""
    hexapod.reference()
    assert hexapod.is_referenced()
    hexapod.set_velocity(1.0)
    hexapod.move_absolute({"Z": -0.5})
    hexapod.wait_on_target(timeout_s=30)
    assert hexapod.position()["Z"] == pytest.approx(-0.5, abs=1e-6)
    hexapod.move_relative({"Z": 0.25})
    hexapod.wait_on_target(timeout_s=30)
    assert hexapod.position()["Z"] == pytest.approx(-0.25, abs=1e-6)
    assert not hexapod.is_moving()
    hexapod.halt()
    hexapod.move_absolute({"Z": 0.0})
    hexapod.wait_on_target(timeout_s=30)
    assert set(hexapod.position()) == {"X", "Y", "Z", "U", "V", "W"}
    assert hexapod.status().name == hexapod.name


def check_scanner(scanner: Scanner, sequence: SequenceSpec) -> None:
    """Identifies itself, loads a sequence, and an imaging-only shot returns frames on its grid."""
    identity = scanner.identify()
    assert identity.n_channels >= sequence.probe.n_elements
    sequence_id = scanner.configure(sequence)
    state = scanner.read_state()
    assert state.state == "configured" and state.sequence_id == sequence_id
    result = scanner.fire(push=False)
    im = sequence.imaging
    assert result.iq.shape == (1 + im.n_frames, im.n_depth, im.n_lateral) and result.iq.dtype == np.complex64
    assert result.frame_times_s.shape == (1 + im.n_frames,) and result.frame_times_s[0] < 0 < result.frame_times_s[1]
    assert not result.pushed and result.push_duration_s == 0.0
    assert scanner.status().name == scanner.name

