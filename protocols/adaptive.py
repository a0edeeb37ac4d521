"""Adaptive probe positions: the next position goes where the model is least sure of the gel.

The paper draws 80 positions per block uniformly at random. With a model at hand (``CampaignPlan.checkpoint``),
every mapped position tells how uncertain the model is along the strip of gel the probe imaged: its
calibrated sigma, a median per lateral strip of the map, placed on the phantom's top at the probe's x plus
the strip's lateral offset (the array's lateral axis is the robot's x) and the probe's y. A Gaussian process
over those observations (log sigma; squared-exponential kernel of ``length_scale_mm``; its mean and variance
from the observations) predicts the uncertainty anywhere on the block, with its own standard deviation
where nothing was mapped yet. Each step scores fresh candidates, drawn exactly as the random strategy draws
its positions (same workspace, edge margin and seed), by the upper confidence bound of the log sigma
averaged over the strips the probe would image there (GP-UCB, Srinivas et al., ICML 2010), and takes the
best one at least ``min_spacing_mm`` from every position already taken. Before any observation the first
candidate wins, which is the random strategy's first position.

Everything is a function of the plan's seed and of the maps, so a campaign replays its picks exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shearlab.protocols.plans import AdaptiveSettings, BlockTarget
from shearlab.protocols.positions import probe_positions_mm

# Prior spread of log sigma before the observations vary (a factor ~1.35 in sigma): the GP must not
# collapse to certainty when every strip mapped so far happens to look alike.
_MIN_PRIOR_SD = 0.3
# Observation noise as a fraction of the prior variance: strips of one map are medians of many pixels,
# but neighbouring positions see different speckle and pushes.
_NOISE_SHARE = 0.1


@dataclass(frozen=True)
class StripObservation:
    """The calibrated sigma the model mapped at one probe position, per lateral strip of its map."""

    xy_mm: tuple[float, float]
    offsets_mm: tuple[float, ...]
    sigma: tuple[float, ...]

    def points_mm(self) -> np.ndarray:
        """``(strips, 2)``: where on the block's top each strip lies."""
        return np.array([(self.xy_mm[0] + dx, self.xy_mm[1]) for dx in self.offsets_mm], dtype=np.float64)


def _kernel(a: np.ndarray, b: np.ndarray, length_mm: float) -> np.ndarray:
    d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    result: np.ndarray = np.exp(-0.5 * d2 / length_mm**2)
    return result


@dataclass
class AdaptivePicker:
    """Picks a block's probe positions one at a time from the maps of those already taken."""

    block: BlockTarget
    edge_margin_mm: float
    seed: int
    settings: AdaptiveSettings
    # Lateral centres of the map strips, relative to the probe centre (the footprint of a candidate).
    offsets_mm: tuple[float, ...]
    taken_mm: list[tuple[float, float]] = field(default_factory=list)
    observations: list[StripObservation] = field(default_factory=list)

    def take(self, xy_mm: tuple[float, float]) -> None:
        """Record a position as taken (picked, or found in a resumed session)."""
        self.taken_mm.append((float(xy_mm[0]), float(xy_mm[1])))

    def observe(self, observation: StripObservation) -> None:
        self.observations.append(observation)

    def candidates_mm(self, step: int) -> np.ndarray:
        """``(candidates, 2)`` of step ``step``: the next slice of the random strategy's own stream."""
        n = self.settings.candidates
        return probe_positions_mm(self.block, n * (step + 1), edge_margin_mm=self.edge_margin_mm, seed=self.seed)[n * step:]

    def scores(self, candidates_mm: np.ndarray) -> np.ndarray:
        """Upper confidence bound of log sigma over each candidate's footprint: ``(candidates,)``."""
        footprint = np.stack([candidates_mm + np.array([dx, 0.0]) for dx in self.offsets_mm], axis=1)
        mean, sd = self.predict_log_sigma(footprint.reshape(-1, 2))
        ucb = (mean + self.settings.exploration * sd).reshape(len(candidates_mm), len(self.offsets_mm))
        result: np.ndarray = ucb.mean(axis=1)
        return result

    def predict_log_sigma(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GP posterior mean and standard deviation of log sigma at ``points_mm`` ``(n, 2)``."""
        where, values = self._observed()
        if values.size == 0:
            return np.zeros(len(points_mm)), np.full(len(points_mm), _MIN_PRIOR_SD)
        prior_mean = float(values.mean())
        prior_var = max(float(values.var()), _MIN_PRIOR_SD**2)
        length = self.settings.length_scale_mm
        gram = prior_var * _kernel(where, where, length) + _NOISE_SHARE * prior_var * np.eye(len(where))
        cross = prior_var * _kernel(np.asarray(points_mm, np.float64), where, length)
        factor = np.linalg.cholesky(gram)
        weights = np.linalg.solve(factor.T, np.linalg.solve(factor, values - prior_mean))
        projected = np.linalg.solve(factor, cross.T)
        mean = prior_mean + cross @ weights
        variance = np.maximum(prior_var - np.sum(projected**2, axis=0), 0.0)
        return mean, np.sqrt(variance)

    def _observed(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each strip with a sigma lies ``(n, 2)`` and its log sigma ``(n,)`` (strips without one left out)."""
        if not self.observations:
            return np.empty((0, 2)), np.empty(0)
        where = np.concatenate([o.points_mm() for o in self.observations])
        sigma = np.concatenate([np.asarray(o.sigma, np.float64) for o in self.observations])
        usable = np.isfinite(sigma) & (sigma > 0)
        return where[usable], np.log(sigma[usable])

    def next_position(self) -> tuple[float, float]:
        """The best candidate of this step far enough from every position taken; recorded as taken."""
        step = len(self.taken_mm)
        candidates = self.candidates_mm(step)
        if self.taken_mm:
            taken = np.asarray(self.taken_mm)
            distance = np.sqrt(np.sum((candidates[:, None, :] - taken[None, :, :]) ** 2, axis=-1)).min(axis=1)
            free = candidates[distance >= self.settings.min_spacing_mm]
            candidates = free if len(free) else candidates
        best = int(np.argmax(self.scores(candidates))) if self._observed()[1].size else 0
        choice = (float(candidates[best, 0]), float(candidates[best, 1]))
        self.take(choice)
        return choice


def strip_sigma(sigma: np.ndarray, lateral_mm: np.ndarray, *, strips: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(offsets_mm, sigma)``: the median of a ``(depth, lateral)`` sigma map over ``strips`` equal lateral
    strips of it, and each strip's centre (NaN pixels left out; an all-NaN strip gives NaN)."""
    edges = np.linspace(0, sigma.shape[1], strips + 1).round().astype(int)
    offsets, medians = [], []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        part = sigma[:, start:stop]
        offsets.append(float(np.mean(lateral_mm[start:stop])))
        medians.append(float(np.nanmedian(part)) if np.isfinite(part).any() else float("nan"))
    return tuple(offsets), tuple(medians)


__all__ = ["AdaptivePicker", "StripObservation", "strip_sigma"]
