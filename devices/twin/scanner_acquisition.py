"""What the twin's scanner sees: the phantom under the probe at the robot's present pose.

The scanner bridge server calls ``TwinScannerBackend.acquire`` for every FIRE. It builds the image
plane through the block under the probe, simulates the push's shear wave and the ultrasound frames,
and refuses a push without acoustic contact (the real system would heat an uncoupled lens).

Per shot it draws what varies from push to push (``WorldConfig.realism``): the transmit output, the
transducer's warming over a burst, the probe's micro-motion and an occasional dropout; what belongs to
the probe position (coupling, speckle, clutter) comes from the world.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from shearlab.devices.interfaces import ScanResult
from shearlab.devices.scanner.bridge_wire import ErrorCode, ScanRefused
from shearlab.devices.twin.physics.acquisition import EchoConditions, acquire_iq
from shearlab.devices.twin.physics.boundaries import Boundaries
from shearlab.devices.twin.physics.imaging import PulseEcho, reverberation_clutter
from shearlab.devices.twin.physics.push import push_beam
from shearlab.devices.twin.realism import EchoVariation, PushVariation
from shearlab.devices.twin.world import POSITION_CELL_MM, PositionDraws, World
from shearlab.protocols.sequences import SequenceSpec

# The pre-push reference frame is taken this long before the push starts, s.
REFERENCE_LEAD_S = 1e-4


class TransducerHeating:
    """The probe face's temperature rise over a burst: each push adds a step, the face cools
    exponentially in between (for the campaign's pace: ``PushVariation.push_interval_s`` within a
    position, ``position_interval_s`` after a move), and the transmit output follows the temperature."""

    def __init__(self, push: PushVariation) -> None:
        self._push = push
        self._rise_k = 0.0
        self._fired = False

    def fire(self, *, moved: bool) -> float:
        """Output factor of the next push (``moved``: the probe stands at a new position since the last
        push); the push then warms the face."""
        if self._fired:
            gap = self._push.position_interval_s if moved else self._push.push_interval_s
            self._rise_k *= math.exp(-gap / self._push.heating_time_constant_s)
        self._fired = True
        factor = 1.0 + self._push.output_change_per_k * self._rise_k
        self._rise_k += self._push.heating_k_per_push
        return factor


def probe_motion_m(times_s: np.ndarray, draws: PositionDraws, echo: EchoVariation, rng: np.random.Generator) -> np.ndarray:
    """The gel's axial motion relative to the robot-held probe at ``times_s``: a drift and a dither, m."""
    drift = rng.normal(0.0, echo.drift_um_s_sigma) * 1e-6
    phase = rng.uniform(0.0, 2.0 * math.pi)
    dither = draws.dither_um * 1e-6 * np.sin(2.0 * math.pi * draws.dither_hz * times_s + phase)
    return drift * times_s + dither


def dropouts(n_frames: int, echo: EchoVariation, rng: np.random.Generator) -> tuple[tuple[int, float], ...]:
    """Decorrelated frames of one shot (1-based tracking frames), usually none."""
    if rng.random() >= echo.dropout_probability:
        return ()
    count = int(rng.integers(echo.dropout_frames[0], echo.dropout_frames[1] + 1))
    first = int(rng.integers(1, max(n_frames - count + 1, 1) + 1))
    correlation = float(rng.uniform(*echo.dropout_correlation))
    return tuple((frame, correlation) for frame in range(first, min(first + count, n_frames + 1)))


class TwinScannerBackend:
    """The scanner bridge twin's physics. Everything it draws follows the sequence of shots and where
    the probe stands, never the wall clock: the same campaign gives the same data."""

    def __init__(self, world: World, *, robot_pose: Callable[[], np.ndarray], seed: int = 0) -> None:
        self.world = world
        self.robot_pose = robot_pose
        self.seed = seed
        self._shots = 0
        self._heating = TransducerHeating(world.config.realism.push)
        self._last_cell: tuple[int, int] | None = None

    def acquire(self, sequence: SequenceSpec, push_enabled: bool) -> ScanResult:
        pose = np.asarray(self.robot_pose(), dtype=float)
        contact = self.world.probe_contact(pose)
        coupled = contact.coupled and contact.indentation_mm >= self.world.config.probe.coupling_depth_mm
        if push_enabled and not coupled:
            raise ScanRefused(ErrorCode.NO_CONTACT, "push refused: no acoustic contact (probe not pressed onto a phantom)")
        grid = sequence.grid
        self._shots += 1
        rng = np.random.default_rng([self.seed, self._shots])
        times = np.concatenate([[-REFERENCE_LEAD_S], grid.frame_times_s])
        x_mm, y_mm = pose[0] * 1e3, pose[1] * 1e3
        if coupled and push_enabled and contact.block is not None:
            iq = self._fire(sequence, contact.block, x_mm, y_mm, times, rng)
        else:
            iq, _truth = acquire_iq(None, sequence, speckle_seed=0, rng=rng,
                                    echo=EchoConditions(snr_db=self.world.config.scanner_snr_db))
        push = sequence.push
        duration = push.duration_s(sequence.probe) if push_enabled else 0.0
        return ScanResult(
            iq=iq, frame_times_s=times, depth_m=grid.depth_m, lateral_m=grid.lateral_m,
            push_start_s=0.0, push_duration_s=duration, push_voltage_v=push.voltage_v if push_enabled else 0.0,
            pushed=push_enabled, metadata={"coupled": bool(coupled)},
        )

    def _fire(self, sequence: SequenceSpec, block, x_mm: float, y_mm: float, times: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
        world, realism = self.world, self.world.config.realism
        grid = sequence.grid
        draws = world.position_draws(block, x_mm, y_mm)
        medium = world.image_plane(block, x_mm, y_mm, grid)
        attenuation = world.attenuation_db_cm_mhz(block.batch_id, block.concentration_pct)
        boundaries = Boundaries.of_block(block, x_mm) if realism.finite_blocks else Boundaries()
        if attenuation is None:  # realism off: the nominal gel
            beam = push_beam(sequence.push, sequence.probe)
            iq, _truth = acquire_iq(medium, sequence, speckle_seed=draws.seed, rng=rng, beam=beam, boundaries=boundaries,
                                    echo=EchoConditions(snr_db=world.config.scanner_snr_db))
            return iq
        shot = np.random.default_rng([self.seed, self._shots, 1])
        sigma = math.sqrt(math.log1p(realism.push.shot_intensity_cv**2))
        output = math.exp(sigma * shot.standard_normal() - 0.5 * sigma * sigma)
        cell = (round(x_mm / POSITION_CELL_MM), round(y_mm / POSITION_CELL_MM))
        heating = self._heating.fire(moved=cell != self._last_cell)
        self._last_cell = cell
        beam = push_beam(sequence.push, sequence.probe, attenuation_db_cm_mhz=attenuation,
                         intensity_scale=draws.coupling * draws.bubble * output * heating)
        pulse = PulseEcho.from_probe(sequence.probe, attenuation_db_cm_mhz=2.0 * attenuation)
        clutter = reverberation_clutter(grid, pulse, level_db_at_face=realism.echo.clutter_db_at_face,
                                        decay_db_per_mm=10.0 / math.log(10.0) / realism.echo.clutter_decay_mm,
                                        rng=np.random.default_rng([draws.seed, 1]))
        echo = EchoConditions(
            # The echo crosses the coupling layer twice.
            snr_db=world.config.scanner_snr_db + 20.0 * math.log10(draws.coupling),
            attenuation_db_cm_mhz=attenuation,
            scatterer_density=world.scatterer_density(block, x_mm, y_mm, grid),
            probe_motion_m=probe_motion_m(times, draws, realism.echo, shot),
            clutter=clutter,
            dropouts=dropouts(grid.shape[0], realism.echo, shot),
        )
        iq, _truth = acquire_iq(medium, sequence, speckle_seed=draws.seed, rng=rng, echo=echo, beam=beam,
                                boundaries=boundaries)
        return iq
