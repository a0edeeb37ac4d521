"""Where a campaign puts the probe next on a phantom: the paper's random draw, or where the model is unsure.

``random``: the plan's seeded uniform positions (``protocols.positions``), fixed before the campaign.
``adaptive``: ``protocols.adaptive.AdaptivePicker`` picks each position from the sigma the live maps
found at the positions before it; it waits for the previous position's map (published a few seconds
after its last push). A resumed adaptive campaign replays its picks from the maps on disk
(``live_files``); a position whose map a crash lost is not observed, so the picks after it may differ.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from shearlab.orchestrator.live_files import read_position_maps
from shearlab.orchestrator.live_maps import MAP_STRIPS, SessionMaps
from shearlab.protocols.adaptive import AdaptivePicker, StripObservation, strip_sigma
from shearlab.protocols.plans import BlockTarget, CampaignPlan
from shearlab.protocols.positions import probe_positions_mm


class PositionStrategy(Protocol):
    # How many positions it can give: a block's listed positions, or the plan's count.
    count: int

    def position(self, index: int) -> tuple[float, float]:
        """The probe centre ``(x_mm, y_mm)`` of position ``index`` (asked in order 0, 1, ...)."""
        ...

    def done(self, index: int) -> None:
        """Position ``index`` is acquired."""
        ...


class RandomPositions:
    def __init__(self, plan: CampaignPlan, block: BlockTarget) -> None:
        self.xy_mm = probe_positions_mm(block, plan.n_positions, edge_margin_mm=plan.edge_margin_mm, seed=plan.seed)
        self.count = len(self.xy_mm)

    def position(self, index: int) -> tuple[float, float]:
        return float(self.xy_mm[index, 0]), float(self.xy_mm[index, 1])

    def done(self, index: int) -> None:
        pass


class AdaptivePositions:
    def __init__(self, plan: CampaignPlan, block: BlockTarget, maps: SessionMaps) -> None:
        offsets, _ = strip_sigma(np.zeros((1, maps.grid.lateral_m.size)), maps.grid.lateral_m * 1e3, strips=MAP_STRIPS)
        self.picker = AdaptivePicker(block, plan.edge_margin_mm, plan.seed, plan.adaptive, offsets)
        self.maps = maps
        self.on_disk = read_position_maps(maps.path)
        self.xy_mm: dict[int, tuple[float, float]] = {}
        self.count = plan.n_positions

    def position(self, index: int) -> tuple[float, float]:
        self.xy_mm[index] = self.picker.next_position()
        return self.xy_mm[index]

    def done(self, index: int) -> None:
        found = self.maps.position_map(index) or self.on_disk.get(index)
        if found is None:
            return
        sigma = tuple(np.nan if v is None else v for v in found.strip_sigma)
        self.picker.observe(StripObservation(self.xy_mm[index], tuple(found.strip_offsets_mm), sigma))


def position_strategy(plan: CampaignPlan, block: BlockTarget, maps: SessionMaps | None) -> RandomPositions | AdaptivePositions:
    if plan.strategy == "adaptive":
        if maps is None:
            raise ValueError('strategy = "adaptive" needs the live maps of a checkpoint')
        return AdaptivePositions(plan, block, maps)
    return RandomPositions(plan, block)


__all__ = ["AdaptivePositions", "PositionStrategy", "RandomPositions", "position_strategy"]
