"""Calibration uncertainty that holds: across many simulated batches, the stated 95 % interval of a
batch's modulus contains the batch's hidden truth about 95 % of the time, and a label's uncertainty
covers the block it goes to.

Each run is the indentation procedure's log in miniature, computed in one go from the twin world's
compression law: the plate descends at 0.01 mm/s, the Nano17 reads the force with its 1/320 N
resolution and one count of noise, first touch is where the force passes 0.03 N, and the fit is the
calibration flow's (``protocols.stress_strain.fit_modulus``). The log is sampled at 20 Hz, a tenth of
the plan's rate, to keep the test quick: the interval comes from the cylinders, not from the samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from shearlab.devices.twin.world import World
from shearlab.devices.twin.world_config import WorldConfig
from shearlab.protocols.phantoms import CONCENTRATIONS_PCT, Cylinder, cast_batch
from shearlab.protocols.plans import IndentationSettings
from shearlab.protocols.stress_strain import CompressionRun, fit_modulus

SETTINGS = IndentationSettings()
RESOLUTION_N = 1 / 320
SAMPLE_RATE_HZ = 20.0
# Enough batches that a 95 % coverage shows as 0.93-0.97 (3 binomial sd at n = 1000).
BATCHES = 1000


def _indent(world: World, cylinder: Cylinder, rng: np.random.Generator) -> CompressionRun:
    world.place_cylinder(cylinder)
    clearance = world.config.indentation.clearance_mm
    step_mm = SETTINGS.plate_speed_mm_s / SAMPLE_RATE_HZ
    plate_z = -clearance + 0.5 - step_mm * np.arange(int((0.5 + 0.1 * cylinder.length_mm) / step_mm))
    force = np.asarray(world.indentation_force_n(plate_z))
    counts = np.rint(force / RESOLUTION_N + rng.normal(0.0, 1.0, force.size))
    reading = counts * RESOLUTION_N
    touch = int(np.argmax(reading >= SETTINGS.touch_force_n))
    return CompressionRun.from_log(plate_z, reading, touch_z_mm=float(plate_z[touch]), radius_mm=cylinder.radius_mm,
                                   length_mm=cylinder.length_mm)


@pytest.mark.parametrize("cylinders", [3, 8])
def test_stated_interval_contains_the_batch_truth_95_percent_of_the_time(cylinders: int) -> None:
    world = World(WorldConfig())
    rng = np.random.default_rng(cylinders)
    batch_hits, block_hits, widths = [], [], []
    for k in range(BATCHES):
        concentration = CONCENTRATIONS_PCT[k % len(CONCENTRATIONS_PCT)]
        batch = f"coverage-{cylinders}-{k}"
        runs = [_indent(world, Cylinder(batch_id=batch, concentration_pct=concentration, index=i), rng)
                for i in range(cylinders)]
        fit = fit_modulus(runs, strain_range=SETTINGS.strain_range)
        truth_kpa = cast_batch(batch, concentration).e_static_pa / 1e3
        batch_hits.append(abs(fit.e_kpa - truth_kpa) <= fit.ci95_kpa)
        widths.append(fit.ci95_kpa / truth_kpa)
        # The block cast from the batch: inside the label's prediction interval.
        block_kpa = world.sample_truth(batch, concentration, "block:coverage").e_static_pa / 1e3
        t = stats.t.ppf(0.975, cylinders - 1)
        block_hits.append(abs(fit.e_kpa - block_kpa) <= t * fit.sample_sd_kpa)
    assert 0.93 <= np.mean(batch_hits) <= 0.97
    assert 0.93 <= np.mean(block_hits) <= 0.97
    # Honest intervals are wide with few cylinders: t(0.975, 2) = 4.3 against 2.4 for 8.
    assert np.median(widths) > (0.05 if cylinders == 3 else 0.025)


def test_an_ideal_world_casts_every_sample_at_the_batch_value() -> None:
    from shearlab.devices.twin.realism import Realism

    world = World(WorldConfig(realism=Realism.ideal()))
    truth = cast_batch("ideal", 10.0)
    assert world.sample_truth("ideal", 10.0, "cylinder:0") == truth
    assert world.sample_truth("ideal", 10.0, "block:b") == truth
