"""The twin's arm model without sockets: motion profiles, contact safety, watchdog.

Times are set by hand on a manual clock, so every expected value follows from constant-acceleration
kinematics; the model integrates exactly within its 4 ms sub-steps (piecewise-constant
acceleration), so tolerances are float round-off unless stated.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from shearlab.devices.clock import Clock
from shearlab.devices.twin.robot_model import RobotModel

DOWN = (np.pi, 0.0, 0.0)
FLOOR_Z_M = 0.10
STIFFNESS_N_PER_M = 2000.0
LIMIT_N = 5.0


@dataclass
class ManualClock(Clock):
    """A clock whose virtual time only moves when the test says so."""

    t: float = 0.0

    def now(self) -> float:
        return self.t


def floor_force_n(pose: np.ndarray) -> float:
    return max(0.0, FLOOR_Z_M - float(pose[2])) * STIFFNESS_N_PER_M


def make(z_m: float = 0.30) -> tuple[RobotModel, ManualClock]:
    clock = ManualClock()
    model = RobotModel(
        clock, contact_force_n=floor_force_n, force_limit_n=LIMIT_N, initial_pose=np.array([0.0, 0.0, z_m, *DOWN])
    )
    return model, clock


def test_move_linear_follows_a_trapezoidal_profile_and_ends_exactly_on_target() -> None:
    model, clock = make()
    target = np.array([0.1, 0.0, 0.30, *DOWN])
    assert model.move_linear(target, speed=0.1, accel=0.5)
    # 0.1 m at 0.1 m/s, 0.5 m/s^2: 0.2 s ramps (0.01 m each) around a 0.8 s cruise -> 1.2 s.
    clock.t = 0.1
    assert model.pose()[0] == pytest.approx(0.5 * 0.5 * 0.1**2, abs=1e-12)
    assert model.velocity()[0] == pytest.approx(0.05, abs=1e-12)
    clock.t = 0.6
    assert model.pose()[0] == pytest.approx(0.01 + 0.1 * 0.4, abs=1e-12)
    assert model.velocity()[0] == pytest.approx(0.1, abs=1e-12)
    assert model.is_moving()
    clock.t = 1.1
    assert model.velocity()[0] == pytest.approx(0.05, abs=1e-12)
    clock.t = 1.2 + 1e-9
    np.testing.assert_array_equal(model.pose(), target)
    assert not model.is_moving()
    np.testing.assert_array_equal(model.velocity(), np.zeros(6))


def test_short_move_is_triangular_and_never_reaches_the_commanded_speed() -> None:
    model, clock = make()
    model.move_linear(np.array([0.0, 0.01, 0.30, *DOWN]), speed=0.1, accel=0.5)
    # 0.01 m < v^2/a = 0.02 m: peak at t = sqrt(L/a) with speed sqrt(L a).
    clock.t = np.sqrt(0.01 / 0.5)
    assert model.velocity()[1] == pytest.approx(np.sqrt(0.01 * 0.5), abs=1e-9)
    assert model.pose()[1] == pytest.approx(0.005, abs=1e-9)


def test_commanded_speed_and_acceleration_are_clamped_to_the_arm_limits() -> None:
    model, clock = make()
    model.move_linear(np.array([0.0, 0.2, 0.30, *DOWN]), speed=5.0, accel=50.0)
    clock.t = 0.5
    assert np.linalg.norm(model.velocity()[:3]) == pytest.approx(model.max_speed_m_s, abs=1e-12)


def test_speed_linear_ramps_holds_and_speed_stop_decelerates_to_rest() -> None:
    model, clock = make()
    model.speed_linear(np.array([0.05, 0, 0, 0, 0, 0]), accel=0.5)
    clock.t = 1.0
    # 0.1 s ramp (0.0025 m) then 0.9 s at 0.05 m/s.
    assert model.pose()[0] == pytest.approx(0.0025 + 0.045, abs=1e-9)
    assert model.is_moving()
    model.speed_stop(0.5)
    clock.t = 2.0
    # Decelerating from 0.05 m/s at 0.5 m/s^2 takes 0.1 s and 0.0025 m.
    assert model.pose()[0] == pytest.approx(0.0475 + 0.0025, abs=1e-9)
    assert not model.is_moving()


def test_a_ramp_ending_inside_a_sub_step_is_integrated_exactly() -> None:
    model, clock = make()
    model.speed_linear(np.array([0.0, 0.0, 0.05, 0, 0, 0]), accel=0.7)
    clock.t = 1.0
    t_ramp = 0.05 / 0.7  # 71.4 ms: not a multiple of the sub-step
    assert model.pose()[2] == pytest.approx(0.30 + 0.5 * 0.05 * t_ramp + 0.05 * (1.0 - t_ramp), abs=1e-12)


def test_stop_linear_interrupts_a_move_from_its_present_velocity() -> None:
    model, clock = make()
    model.move_linear(np.array([0.2, 0.0, 0.30, *DOWN]), speed=0.1, accel=0.5)
    clock.t = 0.6
    x_at_stop = model.pose()[0]
    model.stop_linear(1.0)
    clock.t = 1.0
    # From 0.1 m/s at 1 m/s^2: 0.1 s and 0.005 m more.
    assert model.pose()[0] == pytest.approx(x_at_stop + 0.005, abs=1e-9)
    assert not model.is_moving()


def test_driving_into_the_floor_freezes_where_the_force_reaches_the_limit() -> None:
    model, clock = make(z_m=0.11)
    model.move_linear(np.array([0.0, 0.0, 0.05, *DOWN]), speed=0.1, accel=1.0)
    clock.t = 2.0
    assert model.is_protective_stopped()
    assert "contact force" in (model.protective_stop_reason() or "")
    # 5 N on a 2000 N/m floor: 2.5 mm deep. Bisection pins the pose to well under 1 um.
    assert model.pose()[2] == pytest.approx(FLOOR_Z_M - LIMIT_N / STIFFNESS_N_PER_M, abs=1e-6)
    assert LIMIT_N < model.contact_force_n() < LIMIT_N + 0.01
    np.testing.assert_array_equal(model.velocity(), np.zeros(6))
    assert not model.move_linear(np.array([0.0, 0.0, 0.2, *DOWN]), speed=0.1, accel=1.0)


def test_after_unlock_the_arm_may_leave_the_contact_but_not_press_further() -> None:
    model, clock = make(z_m=0.11)
    model.move_linear(np.array([0.0, 0.0, 0.05, *DOWN]), speed=0.1, accel=1.0)
    clock.t = 2.0
    z_stop = model.pose()[2]
    model.unlock_protective_stop()
    model.move_linear(np.array([0.0, 0.0, 0.0, *DOWN]), speed=0.1, accel=1.0)
    clock.t = 2.5
    assert model.is_protective_stopped()
    assert model.pose()[2] == pytest.approx(z_stop, abs=1e-9)
    model.unlock_protective_stop()
    model.move_linear(np.array([0.0, 0.0, 0.2, *DOWN]), speed=0.1, accel=1.0)
    clock.t = 5.0
    assert not model.is_protective_stopped()
    assert model.pose()[2] == pytest.approx(0.2)


def test_watchdog_kicked_in_time_keeps_the_arm_running() -> None:
    model, clock = make()
    model.set_watchdog(10.0)
    model.speed_linear(np.array([0.01, 0, 0, 0, 0, 0]), accel=1.0)
    for t in np.arange(0.05, 1.0, 0.05):
        clock.t = float(t)
        model.kick_watchdog()
    assert not model.is_protective_stopped()
    assert model.is_moving()


def test_watchdog_not_kicked_stops_the_arm_at_its_deadline() -> None:
    model, clock = make()
    model.set_watchdog(10.0)
    model.speed_linear(np.array([0.01, 0, 0, 0, 0, 0]), accel=1.0)
    clock.t = 0.5
    assert model.is_protective_stopped()
    assert "watchdog" in (model.protective_stop_reason() or "")
    # The deadline is 0.1 s: 0.01 s ramp (5e-5 m) then 0.09 s at 0.01 m/s; frozen there.
    assert model.pose()[0] == pytest.approx(5e-5 + 0.0009, abs=1e-9)
    assert model.seconds_since_protective_stop() == pytest.approx(0.4, abs=1e-9)


def test_triggered_protective_stop_latches_until_unlocked() -> None:
    model, clock = make()
    model.speed_linear(np.array([0.0, 0.02, 0, 0, 0, 0]), accel=1.0)
    clock.t = 0.5
    model.trigger_protective_stop("operator")
    y = model.pose()[1]
    clock.t = 3.0
    assert model.pose()[1] == y
    assert model.protective_stop_reason() == "operator"
    model.unlock_protective_stop()
    assert not model.is_protective_stopped()
    assert not model.is_moving()


def test_concurrent_readers_see_consistent_state() -> None:
    model = RobotModel(Clock(speed=20.0), contact_force_n=floor_force_n)
    model.speed_linear(np.array([0.0, 0.0, 0.01, 0, 0, 0]), accel=1.0)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(300):
                t, pose, velocity, stopped = model.snapshot()
                assert pose.shape == (6,) and velocity.shape == (6,) and not stopped
        except BaseException as exc:  # noqa: BLE001 - collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
