"""Every method of the study as one kind of object: a Young's modulus map over a region of a sequence.

The CNN and its baselines are scored on exactly the same held-out sequences and pixels, so each method
answers the same question, ``estimate(view, rows, cols) -> (rows, cols) kPa`` (NaN: a failed or missing
estimate, never zero):

- ``cnn``: the spatio-temporal DenseNet, evaluated densely; its input is the sequence z-scored with the
  sequence's *own* mean and standard deviation, so scaling a sequence's displacement leaves the input,
  and the estimate, unchanged (amplitude invariance; dense evaluation stays exact);
- ``training_mean``: the mean label of the training sequences, everywhere;
- ``amplitude``: the modulus read off the sequence's displacement std by a one-feature regression fitted
  on the training sequences (the shortcut a net could learn; ``protocols.signal.amplitude``);
- ``tof_paper``/``tof_robust``: the paper's time of flight with alpha fitted by the paper's rule and by
  the robust rule (``protocols.signal.modulus``);
- ``ttp``: the local time-to-peak estimator with the robust alpha (``protocols.signal.time_to_peak``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from shearlab.datasets.reader import SequenceRef, SessionReader, read_displacement
from shearlab.protocols.sequences import ImageGrid
from shearlab.protocols.signal.amplitude import (
    REGRESSION_FAMILIES,
    AmplitudeRegression,
    displacement_mean_std_um,
    displacement_std_um,
    leave_one_group_out_mae,
)
from shearlab.protocols.signal.modulus import AlphaRule, fit_alpha, speed_to_modulus_kpa
from shearlab.protocols.signal.time_to_peak import TimeToPeakSettings, ttp_speed_map
from shearlab.protocols.signal.tof import TofSettings, tof_speed_map
from shearlab.training.inference import predict_dense, predict_dense_distribution
from shearlab.training.model import DenseNet3d

# Extra rows and columns around a region that a speed estimator needs: half its 65 px span plus the
# filters' reach (ToF's 5 px mean filter and its FFT filter's edge effects).
SPEED_MARGIN_PX = (12, 48)


@dataclass
class SequenceView:
    """One sequence read for evaluation: its displacement ``(frames, depth, lateral)`` um and grid.

    Speed maps are kept per estimator and region: ToF with two alpha rules reads one speed map.
    """

    ref: SequenceRef
    volume_um: np.ndarray
    grid: ImageGrid
    focus_depth_m: float
    speeds: dict[tuple[str, int, int, int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, ref: SequenceRef) -> SequenceView:
        with SessionReader(ref.path) as reader:
            grid, info = reader.grid, reader.info
        return cls(ref, read_displacement(ref), grid, info.sequence.push.focus_depth_mm * 1e-3)

    @property
    def push_lateral_m(self) -> float:
        return self.ref.push_lateral_mm * 1e-3

    def scaled(self, gain: float) -> SequenceView:
        """The same sequence with its displacement scaled by ``gain`` (a stronger or weaker push)."""
        return SequenceView(self.ref, self.volume_um * np.float32(gain), self.grid, self.focus_depth_m)


def crop_grid(grid: ImageGrid, rows: slice, cols: slice) -> ImageGrid:
    return ImageGrid(depth_m=grid.depth_m[rows], lateral_m=grid.lateral_m[cols], frame_times_s=grid.frame_times_s)


def _grow(region: slice, margin: int, size: int) -> slice:
    return slice(max(region.start - margin, 0), min(region.stop + margin, size))


def push_zone(grid: ImageGrid, cols: slice, push_lateral_m: float, *, span_px: int = TofSettings().span_px) -> np.ndarray:
    """Columns of ``cols`` whose speed-estimator span straddles the push: ``(n_cols,)`` bool."""
    half_m = (span_px // 2) * abs(grid.dx_m)
    return np.abs(grid.lateral_m[cols] - push_lateral_m) <= half_m


class Estimator(Protocol):
    key: str
    label: str

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        """Young's modulus over ``rows`` x ``cols`` of the sequence, kPa, NaN where it has none."""
        ...


@dataclass
class CnnEstimator:
    model: DenseNet3d
    label: str = "CNN"
    device: str = "cpu"
    key: str = "cnn"

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        return self.volume_estimate(view.volume_um, rows, cols)

    def volume_estimate(self, volume_um: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """``estimate`` of a displacement volume ``(frames, depth, lateral)`` um held in memory."""
        crop, region, (mean_um, std_um) = window_crop(volume_um, rows, cols, self.model.window_px)
        return predict_dense(self.model, crop, mean_um=mean_um, std_um=std_um, device=self.device)[region]

    def distribution(self, view: SequenceView, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """The estimate over ``rows`` x ``cols`` (kPa) and its raw relative sigma, from one dense pass
        (a net with a sigma head; ``training.uncertainty`` turns the sigma into intervals)."""
        return self.volume_distribution(view.volume_um, rows, cols)

    def volume_distribution(self, volume_um: np.ndarray, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """``distribution`` of a displacement volume ``(frames, depth, lateral)`` um held in memory."""
        crop, region, (mean_um, std_um) = window_crop(volume_um, rows, cols, self.model.window_px)
        median, sigma = predict_dense_distribution(self.model, crop, mean_um=mean_um, std_um=std_um, device=self.device)
        return median[region], sigma[region]


def window_crop(volume_um: np.ndarray, rows: slice, cols: slice,
                window_px: int) -> tuple[np.ndarray, tuple[slice, slice], tuple[float, float]]:
    """The volume cropped to ``rows`` x ``cols`` plus the windows' reach, where the region lies in the crop,
    and the whole volume's mean and std (um): the CNN's input is the crop z-scored with them."""
    volume = np.asarray(volume_um, dtype=np.float32)
    half = window_px // 2
    r, c = _grow(rows, half, volume.shape[1]), _grow(cols, half, volume.shape[2])
    region = (slice(rows.start - r.start, rows.stop - r.start), slice(cols.start - c.start, cols.stop - c.start))
    return volume[:, r, c], region, displacement_mean_std_um(volume)


def _uniform(rows: slice, cols: slice, value_kpa: float) -> np.ndarray:
    """One estimate for the whole region: a method that reads a sequence as a single number."""
    return np.full((rows.stop - rows.start, cols.stop - cols.start), value_kpa, dtype=np.float64)


@dataclass
class ConstantEstimator:
    value_kpa: float
    key: str = "training_mean"
    label: str = "training mean"

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        return _uniform(rows, cols, self.value_kpa)


@dataclass
class AmplitudeEstimator:
    regression: AmplitudeRegression
    key: str = "amplitude"
    label: str = "amplitude regression"

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        return _uniform(rows, cols, float(self.regression.predict([displacement_std_um(view.volume_um)])[0]))


SpeedMap = Callable[[np.ndarray, ImageGrid, float], np.ndarray]


def tof_speed(volume: np.ndarray, grid: ImageGrid, push_lateral_m: float) -> np.ndarray:
    return tof_speed_map(volume, grid, push_lateral_m=push_lateral_m, settings=TofSettings()).speed_m_s


def ttp_speed(volume: np.ndarray, grid: ImageGrid, push_lateral_m: float) -> np.ndarray:
    return ttp_speed_map(volume, grid, push_lateral_m=push_lateral_m, settings=TimeToPeakSettings())


def region_speed_m_s(speed_map: SpeedMap, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
    """A speed estimator over ``rows`` x ``cols``, run on a crop wide enough for its span and filters."""
    key = (speed_map.__name__, rows.start, rows.stop, cols.start, cols.stop)
    if key not in view.speeds:
        view.speeds[key] = _region_speed(speed_map, view, rows, cols)
    return view.speeds[key]


def _region_speed(speed_map: SpeedMap, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
    r = _grow(rows, SPEED_MARGIN_PX[0], view.volume_um.shape[1])
    c = _grow(cols, SPEED_MARGIN_PX[1], view.volume_um.shape[2])
    speed = speed_map(view.volume_um[:, r, c], crop_grid(view.grid, r, c), view.push_lateral_m)
    return speed[rows.start - r.start:rows.stop - r.start, cols.start - c.start:cols.stop - c.start]


@dataclass
class SpeedEstimator:
    """A speed estimator turned into a modulus by Eq. 1 with a fitted alpha."""

    key: str
    label: str
    speed_map: SpeedMap
    alpha: float
    alpha_rule: AlphaRule

    def estimate(self, view: SequenceView, rows: slice, cols: slice) -> np.ndarray:
        return speed_to_modulus_kpa(region_speed_m_s(self.speed_map, view, rows, cols), alpha=self.alpha)


@dataclass
class AlphaFit:
    """Speeds of the training sequences of one concentration, ready for either alpha rule."""

    speed_m_s: list[np.ndarray] = field(default_factory=list)
    outside_push: list[np.ndarray] = field(default_factory=list)

    def alpha(self, e_label_kpa: float, rule: AlphaRule) -> float:
        speeds = np.concatenate([s.ravel() for s in self.speed_m_s])
        outside = np.concatenate([m.ravel() for m in self.outside_push])
        return fit_alpha(speeds, e_label_kpa, rule=rule, outside_push=outside)


def roi(view: SequenceView) -> tuple[slice, slice]:
    with SessionReader(view.ref.path) as reader:
        return view.grid.roi_slices(reader.info.roi)


def fit_speed_estimators(refs: Sequence[SequenceRef], *, label_kpa: float) -> list[SpeedEstimator]:
    """ToF with the paper's and the robust alpha, and TTP with the robust alpha, fitted on ``refs``
    (the training sequences of one concentration, labelled ``label_kpa``), over their ROI."""
    fits = {"tof": AlphaFit(), "ttp": AlphaFit()}
    maps: dict[str, SpeedMap] = {"tof": tof_speed, "ttp": ttp_speed}
    for ref in refs:
        view = SequenceView.read(ref)
        rows, cols = roi(view)
        zone = push_zone(view.grid, cols, view.push_lateral_m)
        for name, speed_map in maps.items():
            speed = region_speed_m_s(speed_map, view, rows, cols)
            fits[name].speed_m_s.append(speed)
            fits[name].outside_push.append(np.broadcast_to(~zone, speed.shape))
    return [
        SpeedEstimator("tof_paper", "ToF, paper's alpha", tof_speed, fits["tof"].alpha(label_kpa, "mean"), "mean"),
        SpeedEstimator("tof_robust", "ToF, robust alpha", tof_speed, fits["tof"].alpha(label_kpa, "robust"), "robust"),
        SpeedEstimator("ttp", "time to peak", ttp_speed, fits["ttp"].alpha(label_kpa, "robust"), "robust"),
    ]


def fit_amplitude_regression(refs: Sequence[SequenceRef]) -> AmplitudeRegression:
    """The strongest one-feature amplitude regression on the training sequences: the family with the
    lowest error leaving one probe position out, refitted on them all. The feature is the sequence's
    displacement std, which the session file stores with every sequence."""
    feature = [ref.displacement_std_um for ref in refs]
    labels = [float(ref.label_e_kpa or np.nan) for ref in refs]
    groups = [(ref.session_id, ref.position_index) for ref in refs]
    family = min(REGRESSION_FAMILIES, key=lambda fam: leave_one_group_out_mae(feature, labels, groups, family=fam))
    return AmplitudeRegression.fit(feature, labels, family=family)


def fit_baselines(train: Sequence[SequenceRef], *, alpha_concentration_pct: float) -> list[Estimator]:
    """Every baseline, fitted on the training sequences only."""
    labelled = [ref for ref in train if ref.label_e_kpa is not None]
    alpha_refs = [ref for ref in labelled if ref.concentration_pct == alpha_concentration_pct]
    if not alpha_refs:
        raise ValueError(f"no labelled training sequence of {alpha_concentration_pct:g} % to fit alpha on")
    speed = fit_speed_estimators(alpha_refs, label_kpa=float(alpha_refs[0].label_e_kpa or np.nan))
    mean_label = float(np.mean([ref.label_e_kpa for ref in labelled]))
    return [ConstantEstimator(mean_label), AmplitudeEstimator(fit_amplitude_regression(labelled)), *speed]


__all__ = [
    "AmplitudeEstimator",
    "CnnEstimator",
    "ConstantEstimator",
    "Estimator",
    "SequenceView",
    "SpeedEstimator",
    "crop_grid",
    "fit_baselines",
    "push_zone",
    "region_speed_m_s",
    "roi",
    "window_crop",
]
