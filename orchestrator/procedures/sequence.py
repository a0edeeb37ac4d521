"""One push/image sequence at a probe position: fire (``shoot``), then track (Loupas) and check quality
(``assess``). The two halves are apart so that a campaign can assess one shot while the scanner
makes the next: assessing touches no device.

The robot holds the probe still during the shot; its watchdog is kicked from this thread while the
scanner's reply is awaited in a worker thread, so a long transfer never looks like a dead controller.
A shot waits for the scanner's push duty limit first: on a fast machine the processing between two
pushes takes less than the minimum push interval. A shot the scanner still refuses (a hardware fault,
another client's push) is a failed attempt like one that fails the quality gate: the next attempt's
CONFIGURE re-arms a latched fault.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from shearlab.devices.clock import Clock
from shearlab.devices.errors import DeviceRefusedError
from shearlab.devices.interfaces import ForceSensor, Robot, Scanner, ScanResult
from shearlab.orchestrator.procedures.contact import contact_force_n
from shearlab.orchestrator.procedures.qc import QcVerdict, check_sequence
from shearlab.protocols.plans import QcSettings
from shearlab.protocols.sequences import SOUND_SPEED_M_S, SequenceSpec
from shearlab.protocols.signal.loupas import loupas_displacement

# Wall seconds between watchdog kicks while a shot is in flight.
KICK_INTERVAL_WALL_S = 0.05


@dataclass
class SequenceOutcome:
    """``displacement_um`` and ``iq`` (frames, depth, lateral) and ``result`` are ``None`` when the
    scanner refused the shot; ``qc`` then fails with the scanner's reason."""

    displacement_um: np.ndarray | None
    iq: np.ndarray | None
    qc: QcVerdict
    force_time_s: np.ndarray
    force_n: np.ndarray
    result: ScanResult | None


def fire_holding_watchdog(robot: Robot, scanner: Scanner, *, push: bool = True) -> ScanResult:
    """Fire the configured sequence while this thread keeps the robot's watchdog alive."""
    done = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(scanner.fire, push=push)
        future.add_done_callback(lambda _: done.set())
        while not done.wait(KICK_INTERVAL_WALL_S):
            robot.kick_watchdog()
        return future.result()


@dataclass
class Shot:
    """What one firing gave: the scan (None when refused, with the refusal as ``refused``) and the
    contact force just before and after it, times relative to the push start."""

    sequence: SequenceSpec
    result: ScanResult | None
    refused: QcVerdict | None
    force_time_s: np.ndarray
    force_n: np.ndarray


def shoot(robot: Robot, probe_ft: ForceSensor, scanner: Scanner, clock: Clock, sequence: SequenceSpec) -> Shot:
    """Configure and fire, reading the contact force around the shot.

    A refused shot comes back with a failed verdict naming the scanner's reason (after waiting out a
    duty-cycle refusal); every other device error propagates.
    """
    scanner.configure(sequence)
    clock.sleep(scanner.read_state().push_ready_in_s)
    t0 = clock.now()
    force_before = contact_force_n(probe_ft)
    t1 = clock.now()
    try:
        result = fire_holding_watchdog(robot, scanner, push=True)
    except DeviceRefusedError as exc:
        if exc.transient and exc.retry_after_s:
            clock.sleep(exc.retry_after_s)
        return Shot(sequence, None, QcVerdict(False, "shot_refused", f"shot refused: {exc}"), np.array([(t0 - t1) / 2]),
                    np.array([force_before]))
    t2 = clock.now()
    force_after = contact_force_n(probe_ft)
    t3 = clock.now()
    robot.kick_watchdog()
    # Force samples around the shot, times relative to the push start.
    push_at = (t1 + t2) / 2
    return Shot(sequence, result, None, np.array([(t0 + t1) / 2, (t2 + t3) / 2]) - push_at,
                np.array([force_before, force_after]))


def assess(shot: Shot, *, target_force_n: float, qc: QcSettings) -> SequenceOutcome:
    """Displacement by Loupas and the quality gate's verdict of one shot; no device is touched."""
    if shot.result is None:
        assert shot.refused is not None
        return SequenceOutcome(None, None, shot.refused, shot.force_time_s, shot.force_n, None)
    sequence = shot.sequence
    displacement = loupas_displacement(
        shot.result.iq,
        centre_frequency_hz=sequence.probe.centre_frequency_mhz * 1e6,
        depth_pixel_m=sequence.grid.dz_m,
        sound_speed_m_s=SOUND_SPEED_M_S,
    )
    verdict = check_sequence(displacement, shot.result.iq, force_before_n=float(shot.force_n[0]),
                             force_after_n=float(shot.force_n[-1]), target_force_n=target_force_n, settings=qc)
    return SequenceOutcome(displacement, shot.result.iq, verdict, shot.force_time_s, shot.force_n, shot.result)


def acquire_sequence(
    robot: Robot,
    probe_ft: ForceSensor,
    scanner: Scanner,
    clock: Clock,
    sequence: SequenceSpec,
    *,
    target_force_n: float,
    qc: QcSettings,
) -> SequenceOutcome:
    """Configure, fire, estimate displacement and apply the quality gate (``shoot`` then ``assess``)."""
    return assess(shoot(robot, probe_ft, scanner, clock, sequence), target_force_n=target_force_n, qc=qc)
