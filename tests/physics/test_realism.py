"""The twin's lab effects, each against what it must do physically (issue 10).

The validation of the noise-free physics against theory stays in ``test_shear_waves.py`` and
``test_imaging.py``; these check that every effect added on top behaves as its model says and that
switching the effects off gives the first twin back.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shearlab.devices.twin.physics import homogeneous_medium, simulate_displacement
from shearlab.devices.twin.physics.acquisition import EchoConditions, acquire_iq
from shearlab.devices.twin.physics.boundaries import Boundaries
from shearlab.devices.twin.physics.heterogeneity import BlockField, lognormal_field
from shearlab.devices.twin.physics.imaging import PulseEcho, reverberation_clutter
from shearlab.devices.twin.physics.push import attenuation_np_m, push_beam
from shearlab.devices.twin.realism import Realism
from shearlab.devices.twin.scanner_acquisition import TransducerHeating, TwinScannerBackend
from shearlab.devices.twin.world import World
from shearlab.devices.twin.world_config import WorldConfig, load_world
from shearlab.protocols.phantoms import Block, cast_batch
from shearlab.protocols.sequences import ImagingSpec, ProbeGeometry, PushSpec, SequenceSpec
from shearlab.protocols.signal.loupas import loupas_displacement
from shearlab.protocols.signal.quality import frame_correlation

PROBE = ProbeGeometry()


# --- timing ------------------------------------------------------------------------------------


def test_first_frame_comes_0_13_ms_after_the_push_ends() -> None:
    sequence = SequenceSpec()
    push_s = sequence.push.duration_s(sequence.probe)
    assert push_s == pytest.approx(266.7e-6, rel=1e-3)
    assert sequence.grid.frame_times_s[0] == pytest.approx(push_s + 0.13e-3)
    assert np.diff(sequence.grid.frame_times_s) == pytest.approx(np.full(34, 1 / 7000.0))


# --- push ----------------------------------------------------------------------------------------


def test_push_without_attenuation_is_the_first_twins_beam() -> None:
    plain = push_beam(PushSpec(), PROBE)
    assert plain.path_attenuation_np_m == 0.0
    assert push_beam(PushSpec(), PROBE, intensity_scale=0.5).peak_force_n_m3 == pytest.approx(0.5 * plain.peak_force_n_m3)


def test_attenuation_tilts_the_force_towards_the_face_and_absorbs_more() -> None:
    """Along the axis the force carries exp(-2 alpha f0 (z - z_f)) on top of the Gaussian; at the nominal
    attenuation the focal force equals the first twin's, a stronger gel absorbs more of less intensity."""
    plain = push_beam(PushSpec(), PROBE)
    nominal = push_beam(PushSpec(), PROBE, attenuation_db_cm_mhz=0.5)
    assert nominal.peak_force_n_m3 == pytest.approx(plain.peak_force_n_m3)
    depth = np.array([5e-3, 10e-3, 15e-3])
    ratio = nominal.body_force_n_m3(depth, np.zeros(1))[:, 0] / plain.body_force_n_m3(depth, np.zeros(1))[:, 0]
    a = attenuation_np_m(PROBE, 0.5)
    assert ratio == pytest.approx(np.exp(-2 * a * (depth - 10e-3)), rel=1e-9)
    strong = push_beam(PushSpec(), PROBE, attenuation_db_cm_mhz=1.0)
    a2 = attenuation_np_m(PROBE, 1.0)
    expected = (a2 / a) * math.exp(-2 * (a2 - a) * 10e-3)
    assert strong.peak_force_n_m3 / nominal.peak_force_n_m3 == pytest.approx(expected)


def test_transducer_output_falls_over_a_burst_and_recovers_between_positions() -> None:
    push = Realism().push
    heating = TransducerHeating(push)
    burst = [heating.fire(moved=k == 0) for k in range(7)]
    assert burst[0] == 1.0 and all(np.diff(burst) < 0)
    drop = 1 - burst[-1]
    assert 0 < drop < 6 * push.heating_k_per_push * abs(push.output_change_per_k) + 1e-12
    # After a move the face has cooled for position_interval_s: the next burst starts warmer than the
    # first did, cooler than the last push left it.
    after_move = heating.fire(moved=True)
    assert burst[-1] < after_move < 1.0
    cooled = np.exp(-push.position_interval_s / push.heating_time_constant_s)
    rise_before = (1 - burst[-1]) / abs(push.output_change_per_k) + push.heating_k_per_push
    assert after_move == pytest.approx(1 + push.output_change_per_k * rise_before * cooled)


# --- boundaries --------------------------------------------------------------------------------


def _near_wall() -> tuple[SequenceSpec, Boundaries, object]:
    """A 15 % gel (fast, so reflections come back within the record), the push 13 mm from a side
    wall: the closest a plan's 25 mm edge margin allows."""
    sequence = SequenceSpec(push=PushSpec(lateral_mm=-12.0))
    block = Block(name="edge", batch_id="edge", concentration_pct=15.0, x_mm=25.0)
    boundaries = Boundaries.of_block(block, 0.0)
    medium = homogeneous_medium(cast_batch("edge", 15.0), sequence.grid)
    return sequence, boundaries, medium


def test_images_and_finite_differences_agree_on_a_bounded_block() -> None:
    sequence, boundaries, medium = _near_wall()
    assert boundaries.left_m == pytest.approx(-25e-3)
    exact = simulate_displacement(medium, sequence, boundaries=boundaries, method="exact")
    fd = simulate_displacement(medium, sequence, boundaries=boundaries, method="fd")
    assert np.linalg.norm(fd - exact) / np.linalg.norm(exact) < 0.01


def test_a_near_wall_reflects_the_wave_back_and_only_after_the_round_trip() -> None:
    """Between the push (-12 mm) and the wall (-25 mm) the bounded and unbounded fields are the same
    until the wave has gone to the wall and come back (traction-free wall: the reflection adds)."""
    sequence, boundaries, medium = _near_wall()
    grid = sequence.grid
    bounded = simulate_displacement(medium, sequence, boundaries=boundaries)
    free = simulate_displacement(medium, sequence, boundaries=Boundaries(top_m=0.0))
    row = int(np.argmin(np.abs(grid.depth_m - 10e-3)))
    col = int(np.argmin(np.abs(grid.lateral_m + 16e-3)))
    speed = cast_batch("edge", 15.0).shear_speed_m_s
    back_s = (13e-3 + 9e-3) / speed
    before = grid.frame_times_s < 0.8 * back_s
    after = grid.frame_times_s > 1.2 * back_s
    difference = bounded[:, row, col] - free[:, row, col]
    scale = np.abs(free[:, row, col]).max()
    assert np.abs(difference[before]).max() < 0.01 * scale
    assert difference[after].max() > 0.05 * scale


def test_the_probe_face_holds_the_gel_still() -> None:
    sequence = SequenceSpec()
    medium = homogeneous_medium(cast_batch("face", 10.0), sequence.grid)
    held = simulate_displacement(medium, sequence, boundaries=Boundaries(top_m=0.0))
    free = simulate_displacement(medium, sequence)
    # The first row is 40 um below the face: a Dirichlet face pins it near zero, the free field does not.
    assert np.abs(held[:, 0]).max() < 0.2 * np.abs(free[:, 0]).max()
    assert np.abs(held[:, 125]).max() == pytest.approx(np.abs(free[:, 125]).max(), rel=0.1)


def test_outside_the_gel_there_is_no_displacement() -> None:
    boundaries = Boundaries(left_m=-5e-3)
    inside = boundaries.inside(np.array([1e-3]), np.array([-6e-3, -4e-3]))
    assert inside.tolist() == [[False, True]]


# --- the cast gel ------------------------------------------------------------------------------


def test_lognormal_field_has_unit_mean_the_asked_spread_and_smoothness() -> None:
    field = lognormal_field((64, 64, 64), spacing_mm=1.0, correlation_mm=4.0, cv=0.1, seed=3)
    assert field.mean() == pytest.approx(1.0, abs=0.01)
    assert field.std() == pytest.approx(0.1, rel=0.1)
    g = np.log(field) - np.log(field).mean()
    # Gaussian covariance exp(-r^2 / (2 l^2)): 0.97 one l / 4 apart, 0.61 one l apart.
    lag1 = np.mean(g[1:] * g[:-1]) / g.var()
    lag4 = np.mean(g[4:] * g[:-4]) / g.var()
    assert lag1 == pytest.approx(math.exp(-1 / 32), abs=0.03)
    assert lag4 == pytest.approx(math.exp(-0.5), abs=0.1)
    assert np.all(lognormal_field((4, 4), spacing_mm=1.0, correlation_mm=1.0, cv=0.0, seed=1) == 1.0)


def test_block_field_is_the_same_where_the_probe_returns_and_differs_elsewhere() -> None:
    field = BlockField.draw("b/stiffness", centre_mm=(0.0, 0.0), size_mm=(100.0, 100.0, 100.0), depth_mm=40.0,
                            correlation_mm=10.0, cv=0.05)
    grid = SequenceSpec().grid
    here = field.image_plane(0.0, 0.0, grid.depth_m, grid.lateral_m)
    again = field.image_plane(0.0, 0.0, grid.depth_m, grid.lateral_m)
    shifted = field.image_plane(5.0, 0.0, grid.depth_m, grid.lateral_m)
    np.testing.assert_array_equal(here, again)
    # 5 mm to the right: the image plane is the same gel read 5 mm further along (91 columns).
    np.testing.assert_allclose(shifted[:, :-91], here[:, 91:], rtol=0.01)
    elsewhere = field.image_plane(0.0, 30.0, grid.depth_m, grid.lateral_m)
    assert np.abs(elsewhere - here).max() > 0.01


def test_samples_of_a_batch_differ_and_an_ideal_world_has_none() -> None:
    world = World(WorldConfig())
    moduli = [world.sample_truth("B", 10.0, f"cylinder:{i}").e_static_pa for i in range(400)]
    batch = cast_batch("B", 10.0).e_static_pa
    assert np.mean(moduli) == pytest.approx(batch, rel=0.01)
    assert np.std(moduli) / batch == pytest.approx(world.config.realism.gel.sample_modulus_cv, rel=0.15)
    assert World(WorldConfig(realism=Realism.ideal())).sample_truth("B", 10.0, "cylinder:0").e_static_pa == batch


def test_attenuation_rises_with_concentration_and_varies_by_batch() -> None:
    world = World(WorldConfig())
    gel = world.config.realism.gel
    mean = {c: np.mean([world.attenuation_db_cm_mhz(f"B{k}", c) for k in range(200)]) for c in (5.0, 10.0, 17.5)}
    assert mean[10.0] == pytest.approx(gel.attenuation_db_cm_mhz_at_10pct, rel=0.03)
    assert mean[17.5] / mean[5.0] == pytest.approx(1 + gel.attenuation_rise_over_range, rel=0.05)
    assert World(WorldConfig(realism=Realism.ideal())).attenuation_db_cm_mhz("B", 10.0) is None


# --- echoes --------------------------------------------------------------------------------------


def _shot(echo: EchoConditions, *, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    sequence = SequenceSpec(imaging=ImagingSpec(n_frames=8))
    medium = homogeneous_medium(cast_batch("echo", 10.0), sequence.grid)
    iq, truth_m = acquire_iq(medium, sequence, speckle_seed=7, echo=echo, rng=np.random.default_rng(seed))
    d = loupas_displacement(iq, centre_frequency_hz=7.5e6, depth_pixel_m=sequence.grid.dz_m)
    return d, truth_m * 1e6


def test_clutter_pulls_shallow_displacement_towards_zero() -> None:
    """A stationary clutter c adds to a moving echo s: the phase turns by phi |s|^2 / (|s|^2 + |c|^2), so
    the estimate is scaled by 1 / (1 + CSR). With 0 dB at the face and 5 mm decay: -50 % at the face,
    -18 % at 5 mm, ~0 at the focus."""
    sequence = SequenceSpec(imaging=ImagingSpec(n_frames=8))
    pulse = PulseEcho.from_probe(PROBE)
    clutter = reverberation_clutter(sequence.grid, pulse, level_db_at_face=0.0, decay_db_per_mm=10 / math.log(10) / 5.0,
                                    rng=np.random.default_rng(1))
    clean, truth = _shot(EchoConditions(snr_db=60.0))
    cluttered, _ = _shot(EchoConditions(snr_db=60.0, clutter=clutter))
    depth_mm = sequence.grid.depth_m * 1e3
    for lo, hi in ((2.0, 4.0), (9.0, 11.0)):
        rows = (depth_mm >= lo) & (depth_mm <= hi)
        moving = np.abs(truth[:, rows]) > 0.2 * np.abs(truth).max()
        ratio = np.sum(cluttered[:, rows][moving] * clean[:, rows][moving]) / np.sum(clean[:, rows][moving] ** 2)
        csr = math.exp(-0.5 * (lo + hi) / 5.0)
        assert ratio == pytest.approx(1.0 / (1.0 + csr), abs=0.06)


def test_probe_motion_is_a_common_displacement_of_every_pixel() -> None:
    motion = np.linspace(0.0, 1.5e-6, 9)
    still, _ = _shot(EchoConditions(snr_db=40.0))
    moving, _ = _shot(EchoConditions(snr_db=40.0, probe_motion_m=motion))
    common = np.median(moving - still, axis=(1, 2))
    np.testing.assert_allclose(common, (motion[1:] - motion[0]) * 1e6, atol=0.05)


def test_a_dropout_decorrelates_its_frame_only() -> None:
    sequence = SequenceSpec(imaging=ImagingSpec(n_frames=8))
    medium = homogeneous_medium(cast_batch("echo", 10.0), sequence.grid)
    iq, _ = acquire_iq(medium, sequence, speckle_seed=7, echo=EchoConditions(snr_db=40.0, dropouts=((3, 0.4),)),
                       rng=np.random.default_rng(2))
    correlation = frame_correlation(iq)
    assert correlation[2] == pytest.approx(0.4, abs=0.05)
    assert np.all(np.delete(correlation, 2) > 0.9)


def test_scatterer_density_scales_echo_power() -> None:
    sequence = SequenceSpec(imaging=ImagingSpec(n_frames=2))
    grid = sequence.grid
    density = np.ones((grid.depth_m.size, grid.lateral_m.size), dtype=np.float32)
    density[:, 300:] = 4.0
    medium = homogeneous_medium(cast_batch("echo", 10.0), grid)
    iq, _ = acquire_iq(medium, sequence, speckle_seed=9, echo=EchoConditions(snr_db=80.0, scatterer_density=density),
                       rng=np.random.default_rng(0))
    power = np.abs(iq[0]) ** 2
    assert power[:, 320:].mean() / power[:, :280].mean() == pytest.approx(4.0, rel=0.15)


# --- the twin scanner ----------------------------------------------------------------------------


def _backend(world: World, block: Block, x_mm: float) -> TwinScannerBackend:
    pose = np.array([x_mm * 1e-3, block.y_mm * 1e-3, (block.size_mm[2] - 0.2) * 1e-3, np.pi, 0.0, 0.0])
    return TwinScannerBackend(world, robot_pose=lambda: pose, seed=5)


def _peak(world: World, block: Block, x_mm: float, shots: int) -> list[float]:
    backend = _backend(world, block, x_mm)
    sequence = SequenceSpec(imaging=ImagingSpec(n_frames=6))
    peaks = []
    for _ in range(shots):
        iq = backend.acquire(sequence, True).iq
        d = loupas_displacement(iq, centre_frequency_hz=7.5e6, depth_pixel_m=sequence.grid.dz_m)
        peaks.append(float(np.percentile(d[:, 100:150, 280:320], 99)))
    return peaks


def test_ideal_world_repeats_a_shot_and_a_real_one_does_not() -> None:
    config = load_world()
    block = next(b for b in config.blocks if b.name == "block_10p0")
    ideal = World(config.model_copy(update={"realism": Realism.ideal()}))
    real = World(config)
    ideal_peaks = _peak(ideal, block, block.x_mm, 3)
    real_peaks = _peak(real, block, block.x_mm, 3)
    assert np.std(ideal_peaks) / np.mean(ideal_peaks) < 0.01
    assert np.std(real_peaks) / np.mean(real_peaks) > 0.005
    # Positions differ by their coupling (and bubbles): a few per cent at least somewhere on the block.
    by_position = [np.mean(_peak(real, block, block.x_mm + dx, 1)) for dx in (-20.0, -10.0, 10.0, 20.0)]
    assert np.std(by_position) / np.mean(by_position) > 0.02
