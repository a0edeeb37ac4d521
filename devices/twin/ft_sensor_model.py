"""What an ATI F/T controller measures, as the serial twin and the simulation share it.

Per record: the true load from ``wrench_fn()`` in counts, plus ``averaging`` independent Gaussian noise
samples of ``noise_counts`` std (default one count, the sensor's resolution) averaged, rounded to integer
counts, clipped at the calibration range, minus the stored bias. Every record slot takes the next value of
a counter; a dropped record uses its slot's counter without being delivered, so a reader sees the gap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shearlab.devices.force.calibration import FTCalibration, calibration_for

# The controller averages at most 16 raw samples per record (``SA n``).
MAX_AVERAGING = 16

Wrench = tuple[np.ndarray, np.ndarray]


class FTSensorModel:
    """One sensor's measurement chain; not thread-safe (each owner serialises its calls).

    Parameters
    ----------
    sensor
        ``"nano17"`` or ``"nano43"``: selects counts per unit and ranges.
    wrench_fn
        The true load in the sensor frame now: force (N), shape (3,), and torque (N mm), shape (3,).
    seed
        Seed of the noise generator.
    noise_counts
        Standard deviation of one raw noise sample, counts.
    """

    def __init__(self, sensor: str, wrench_fn: Callable[[], Wrench], *, seed: int = 0, noise_counts: float = 1.0) -> None:
        if not noise_counts >= 0:
            raise ValueError(f"noise_counts must be >= 0, got {noise_counts!r}")
        self.calibration: FTCalibration = calibration_for(sensor)
        self._wrench_fn = wrench_fn
        self._noise_counts = float(noise_counts)
        self._rng = np.random.default_rng(seed)
        self._counts_per_unit = self.calibration.counts_per_unit()
        self._range_counts = self.calibration.range_counts()
        self.averaging = 1
        self._bias_counts = np.zeros(6, dtype=np.int64)
        self.counter = 0
        self._dropped = 0

    def set_averaging(self, n: int) -> None:
        if not 1 <= n <= MAX_AVERAGING:
            raise ValueError(f"averaging must be 1..{MAX_AVERAGING}, got {n}")
        self.averaging = int(n)

    def bias(self) -> None:
        """Store the present reading as the offset subtracted from every later record (``SB``)."""
        self._bias_counts = np.zeros(6, dtype=np.int64)
        counts, _ = self.sample_counts(1)
        self._bias_counts = counts[0]

    def unbias(self) -> None:
        self._bias_counts = np.zeros(6, dtype=np.int64)

    def drop_records(self, n: int) -> None:
        """Lose the next ``n`` record slots: their counters are used, their records never delivered."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self._dropped += n

    def skip_dropped(self, slots: int | None = None) -> int:
        """Spend up to ``slots`` (default: all) pending dropped slots on the counter; returns how many."""
        skipped = self._dropped if slots is None else min(self._dropped, slots)
        self._dropped -= skipped
        self.counter += skipped
        return skipped

    def sample_counts(self, n_records: int) -> tuple[np.ndarray, np.ndarray]:
        """Averaged, quantised, clipped and biased readings of the present load.

        Returns
        -------
        counts
            Shape (n_records, 6), int64, axes ``(Fx, Fy, Fz, Tx, Ty, Tz)``.
        saturated
            Shape (n_records,), bool: some axis was clipped at the range.
        """
        force_n, torque_nmm = self._wrench_fn()
        load_counts = np.concatenate([np.asarray(force_n, float), np.asarray(torque_nmm, float)])
        load_counts = load_counts * self._counts_per_unit
        noise = self._rng.normal(0.0, self._noise_counts, size=(n_records, self.averaging, 6)).mean(axis=1)
        raw = np.rint(load_counts + noise)
        clipped = np.clip(raw, -self._range_counts, self._range_counts)
        saturated = np.any(clipped != raw, axis=1)
        return clipped.astype(np.int64) - self._bias_counts, saturated

    def next_records(self, n_records: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next ``n_records`` records: ``sample_counts`` plus each record's counter, shape (n,)."""
        counts, saturated = self.sample_counts(n_records)
        counters = self.counter + 1 + np.arange(n_records)
        self.counter += n_records
        return counts, saturated, counters
