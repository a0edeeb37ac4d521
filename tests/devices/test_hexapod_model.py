"""The twin's hexapod motion model, on a hand-driven clock: known answers, no transport."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from shearlab.devices.clock import Clock
from shearlab.devices.twin.hexapod_model import AXES, CommandRefused, GcsErrorCode, HexapodModel

pytestmark = pytest.mark.timeout(30)

REFERENCE_S = 2.0


@dataclass
class ManualClock(Clock):
    """Virtual time that moves only when the test says so."""

    t: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


def referenced_model(clock: ManualClock, **kwargs: float) -> HexapodModel:
    model = HexapodModel(clock, reference_duration_s=REFERENCE_S, **kwargs)
    model.set_servo({axis: True for axis in AXES})
    model.reference()
    clock.sleep(REFERENCE_S)
    return model


def refused_code(action) -> GcsErrorCode:
    with pytest.raises(CommandRefused) as info:
        action()
    return info.value.code


def test_moves_are_refused_before_reference_and_with_servo_off() -> None:
    clock = ManualClock()
    model = HexapodModel(clock, reference_duration_s=REFERENCE_S)
    assert refused_code(lambda: model.move_absolute({"Z": 1.0})) == GcsErrorCode.MOVE_WITHOUT_REF_OR_NO_SERVO
    assert refused_code(model.reference) == GcsErrorCode.MOVE_WITHOUT_REF_OR_NO_SERVO

    model = referenced_model(clock)
    model.set_servo({"Z": False})
    assert refused_code(lambda: model.move_absolute({"X": 1.0})) == GcsErrorCode.MOVE_WITHOUT_REF_OR_NO_SERVO


def test_referencing_takes_its_time_and_ends_at_the_origin() -> None:
    clock = ManualClock()
    model = HexapodModel(clock, reference_duration_s=REFERENCE_S)
    model.set_servo({axis: True for axis in AXES})
    model.reference()
    clock.sleep(REFERENCE_S / 2)
    assert not model.is_ready()
    assert model.moving_mask() == 0b111111
    assert not any(model.referenced().values())
    clock.sleep(REFERENCE_S / 2)
    assert model.is_ready()
    assert all(model.referenced().values())
    assert model.position_mm() == {axis: 0.0 for axis in AXES}
    assert all(model.on_target().values())


def test_a_move_runs_at_the_system_velocity() -> None:
    clock = ManualClock()
    model = referenced_model(clock)
    model.set_velocity(2.0)
    model.move_absolute({"Z": -4.0})
    clock.sleep(1.0)
    # Halfway in time is halfway in space: 2 mm/s for 1 s.
    assert model.position_mm()["Z"] == pytest.approx(-2.0, abs=1e-12)
    assert model.moving_mask() == 1 << AXES.index("Z")
    assert not model.on_target()["Z"]
    clock.sleep(1.0)
    assert model.position_mm()["Z"] == -4.0
    assert model.moving_mask() == 0
    assert all(model.on_target().values())


def test_all_axes_follow_one_straight_line_and_arrive_together() -> None:
    clock = ManualClock()
    model = referenced_model(clock)
    model.set_velocity(5.0)
    # |(3, 4, 0)| = 5 mm at 5 mm/s: 1 s; 1 deg at 5 deg/s is faster, so translation sets the pace.
    goal = {"X": 3.0, "Y": 4.0, "U": 1.0}
    model.move_absolute(goal)
    for fraction in (0.25, 0.5, 0.75):
        clock.t = REFERENCE_S + fraction
        position = model.position_mm()
        for axis, value in goal.items():
            assert position[axis] == pytest.approx(fraction * value, abs=1e-12)
        assert position["Z"] == 0.0
    clock.t = REFERENCE_S + 1.0
    assert all(model.on_target().values())
    assert model.targets() == {"X": 3.0, "Y": 4.0, "Z": 0.0, "U": 1.0, "V": 0.0, "W": 0.0}


def test_a_target_out_of_limits_moves_nothing() -> None:
    clock = ManualClock()
    model = referenced_model(clock, travel_mm=20.0)
    assert refused_code(lambda: model.move_absolute({"X": 1.0, "Z": 20.5})) == GcsErrorCode.POS_OUT_OF_LIMITS
    clock.sleep(10.0)
    assert model.position_mm()["X"] == 0.0
    assert model.targets()["X"] == 0.0
    assert refused_code(lambda: model.move_absolute({"Q": 1.0})) == GcsErrorCode.INVALID_AXIS
    assert refused_code(lambda: model.set_velocity(0.0)) == GcsErrorCode.PARAM_OUT_OF_RANGE
    assert refused_code(lambda: model.set_velocity(model.max_velocity_mm_s * 2)) == GcsErrorCode.PARAM_OUT_OF_RANGE


def test_a_relative_move_adds_to_the_last_commanded_target() -> None:
    clock = ManualClock()
    model = referenced_model(clock)
    model.set_velocity(1.0)
    model.move_absolute({"Z": 2.0})
    clock.sleep(0.5)
    model.move_relative({"Z": 1.0})
    assert model.targets()["Z"] == 3.0
    clock.sleep(10.0)
    assert model.position_mm()["Z"] == 3.0


def test_halt_stops_where_the_platform_is_and_sets_error_10() -> None:
    clock = ManualClock()
    model = referenced_model(clock)
    model.set_velocity(1.0)
    model.move_absolute({"Z": 5.0})
    clock.sleep(2.0)
    model.halt()
    clock.sleep(5.0)
    assert model.position_mm()["Z"] == pytest.approx(2.0, abs=1e-12)
    assert model.targets()["Z"] == pytest.approx(2.0, abs=1e-12)
    assert model.moving_mask() == 0
    assert model.take_error() == GcsErrorCode.STOPPED
    assert model.take_error() == 0


def test_a_stalled_axis_never_arrives_while_the_others_do() -> None:
    clock = ManualClock()
    model = referenced_model(clock)
    model.set_velocity(1.0)
    model.stall_axis("Z")
    model.move_absolute({"X": 1.0, "Z": 1.0})
    clock.sleep(60.0)
    position, on_target = model.position_mm(), model.on_target()
    assert position["X"] == 1.0 and on_target["X"]
    assert position["Z"] == 0.0 and not on_target["Z"]
    assert model.moving_mask() == 1 << AXES.index("Z")
    with pytest.raises(ValueError, match="no axis"):
        model.stall_axis("Q")


def test_an_injected_error_is_read_once() -> None:
    model = HexapodModel(ManualClock())
    model.inject_error(17)
    assert model.take_error() == 17
    assert model.take_error() == 0


def test_the_motion_guard_halts_at_the_first_refused_position() -> None:
    clock = ManualClock()
    model = referenced_model(clock)
    model.set_velocity(0.5)
    model.set_motion_guard(lambda position: position["Z"] > -1.5)
    model.move_absolute({"Z": -4.0})
    # Nobody looks for 20 s: the platform must still have stopped at the limit, not at -4 mm.
    clock.sleep(20.0)
    assert model.position_mm()["Z"] == pytest.approx(-1.5, abs=1e-6)
    assert model.moving_mask() == 0
    assert model.take_error() == GcsErrorCode.STOPPED
    # Moving away from the limit is allowed.
    model.move_absolute({"Z": 0.0})
    clock.sleep(10.0)
    assert model.position_mm()["Z"] == 0.0


def test_concurrent_readers_and_movers_see_consistent_positions() -> None:
    clock = Clock(speed=200.0)
    model = HexapodModel(clock, reference_duration_s=0.0)
    model.set_servo({axis: True for axis in AXES})
    model.reference()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                z = model.position_mm()["Z"]
                assert 0.0 <= z <= 2.0
        except BaseException as exc:  # the assertion must reach the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    rng = np.random.default_rng(7)
    for _ in range(200):
        model.move_absolute({"Z": float(rng.uniform(0.0, 2.0))})
    stop.set()
    for thread in readers:
        thread.join(5.0)
    assert not errors
