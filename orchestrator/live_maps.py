"""Maps of each probe position while a campaign runs, from the latest checkpoint, beside the acquisition.

Once a push is written, one worker thread maps its ROI (dense, ``training.inference``); once a
position's pushes are all written, it compounds them (the mean of the pushes' maps, as the paper's
inclusion maps; the sigma is averaged too, which assumes the pushes' errors fully correlated, the
cautious reading), draws the modulus beside the sigma, and publishes within seconds: the files the live
page shows (``live_files``) and a Prefect markdown artifact per position (a table of the median modulus
and sigma per push, and the map image, served by ``shearlab live``). The acquisition never waits for
this: a failure here is logged and the campaign carries on.

Two things do need a map before the acquisition goes on, and get it synchronously: the QC's
uncertainty gate (``SessionMaps.gate``: the push's map, the same one the live page then shows) and the
adaptive strategy (``SessionMaps.position_map``: the previous position's strips, ready a few seconds after
its last push).

The model is the newest checkpoint at ``CampaignPlan.checkpoint`` (a file, or a folder of them), looked
up again at every position: a net trained meanwhile is picked up at the next one.
"""

from __future__ import annotations

import contextvars
import io
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from shearlab.datasets.records import SequenceRecord, SessionInfo
from shearlab.orchestrator.live_files import PositionMap, PushMap, write_position_map
from shearlab.orchestrator.reports import artifact_key
from shearlab.protocols.adaptive import strip_sigma
from shearlab.protocols.phantoms import nominal_e_kpa
from shearlab.protocols.sequences import ImageGrid

if TYPE_CHECKING:
    from shearlab.training.estimators import CnnEstimator
    from shearlab.training.uncertainty import SigmaCalibration

# Lateral strips of a position's sigma map that the adaptive strategy reads (3 mm each over the 12 mm ROI).
MAP_STRIPS = 4
# Colour scales of a session's maps, fixed for the whole session so positions compare at a glance: the
# modulus up to this factor times the stiffest gel's nominal modulus, the sigma up to a quarter of that.
_VMAX_FACTOR = 1.6
_SIGMA_VMAX_SHARE = 0.25


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint's net (as the study evaluates it) and the calibration of its sigma."""

    cnn: CnnEstimator
    calibration: SigmaCalibration
    name: str

    @property
    def has_sigma(self) -> bool:
        return self.cnn.model.sigma_head is not None


class LatestModel:
    """The newest checkpoint at ``source`` (a ``.pt`` file, or the newest ``*.pt`` in a folder), reloaded
    when a newer one appears; safe to call from the acquisition and the mapping thread at once."""

    def __init__(self, source: Path) -> None:
        self.source = Path(source)
        self._lock = threading.Lock()
        self._stamp: tuple[Path, float] | None = None
        self._loaded: LoadedModel | None = None

    def _newest(self) -> Path:
        if self.source.is_dir():
            found = sorted(self.source.glob("*.pt"), key=lambda p: (p.stat().st_mtime, p.name))
            if not found:
                raise FileNotFoundError(f"{self.source}: no checkpoint (*.pt) to map with")
            return found[-1]
        return self.source

    def current(self) -> LoadedModel:
        with self._lock:
            path = self._newest()
            stamp = (path, path.stat().st_mtime)
            if self._loaded is None or stamp != self._stamp:
                # torch only where a campaign maps: a rig PC without the train extra acquires without it.
                from shearlab.training.checkpoint import load_checkpoint
                from shearlab.training.estimators import CnnEstimator
                from shearlab.training.uncertainty import SigmaCalibration

                state = load_checkpoint(path)
                self._loaded = LoadedModel(CnnEstimator(state.build_model("cpu"), label=path.stem),
                                           state.sigma_calibration or SigmaCalibration.gaussian(), path.name)
                self._stamp = stamp
            return self._loaded


@dataclass
class SequenceMap:
    """One push's map over the ROI: the estimate (kPa) and its calibrated relative sigma (None without a sigma head)."""

    push_index: int
    lateral_mm: float
    estimate_kpa: np.ndarray
    sigma: np.ndarray | None
    checkpoint: str

    @property
    def median_kpa(self) -> float | None:
        finite = self.estimate_kpa[np.isfinite(self.estimate_kpa)]
        return float(np.median(finite)) if finite.size else None

    @property
    def roi_sigma(self) -> float | None:
        """Median calibrated relative sigma over the ROI: what the QC's uncertainty gate compares."""
        if self.sigma is None or not np.isfinite(self.sigma).any():
            return None
        return float(np.nanmedian(self.sigma))

    @property
    def sigma_kpa(self) -> np.ndarray:
        from shearlab.training.uncertainty import sigma_kpa

        return sigma_kpa(self.estimate_kpa, self.sigma) if self.sigma is not None else np.full(self.estimate_kpa.shape, np.nan)


def map_sequence(model: LoadedModel, displacement_um: np.ndarray, roi: tuple[slice, slice], *, push_index: int,
                 lateral_mm: float) -> SequenceMap:
    """The net's map of one displacement volume ``(frames, depth, lateral)`` um over the ROI."""
    if model.has_sigma:
        estimate, raw_sigma = model.cnn.volume_distribution(displacement_um, *roi)
        return SequenceMap(push_index, lateral_mm, estimate, model.calibration.sigma(raw_sigma), model.name)
    return SequenceMap(push_index, lateral_mm, model.cnn.volume_estimate(displacement_um, *roi), None, model.name)


@dataclass(frozen=True)
class _Push:
    """What the position's table says of a push besides its map."""

    push: int
    lateral_mm: float
    qc_passed: bool
    qc_reason: str
    contact_force_n: float | None
    acquired_at: str


class LiveMapping:
    """One worker thread that maps and publishes every session of a campaign, in the order asked.

    Jobs run in a copy of the caller's context (the flow run's), so the artifacts land on the campaign's run.
    """

    def __init__(self, model: LatestModel, *, live_url: str, on_error: Callable[[str], None] | None = None) -> None:
        self.model = model
        self.live_url = live_url.rstrip("/")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-map")
        self._context = contextvars.copy_context()
        self._on_error = on_error or (lambda message: get_run_logger().warning(message))

    def session(self, path: Path, info: SessionInfo) -> SessionMaps:
        return SessionMaps(self, Path(path), info)

    def submit(self, job: Callable[[], object]) -> Future[object]:
        def guarded() -> object:
            try:
                return job()
            except Exception as exc:  # noqa: BLE001 - a map that fails must not stop the acquisition
                self._on_error(f"live map failed: {type(exc).__name__}: {exc}")
                return None

        return self._pool.submit(self._context.run, guarded)

    def close(self) -> None:
        """Finish what was asked (the last position's map), then stop the thread."""
        self._pool.shutdown(wait=True)


@dataclass
class SessionMaps:
    """The live maps of one session: pushes mapped as they are written, positions published when complete."""

    mapping: LiveMapping
    path: Path
    info: SessionInfo
    _maps: dict[int, dict[int, SequenceMap]] = field(default_factory=dict)
    _pushes: dict[int, dict[int, _Push]] = field(default_factory=dict)
    _published: dict[int, Future[object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from shearlab.training.estimators import crop_grid

        grid = self.info.sequence.grid
        self.roi = grid.roi_slices(self.info.roi)
        self.grid: ImageGrid = crop_grid(grid, *self.roi)
        plan_block = self.info.plan.get("block", {})
        gels = [self.info.concentration_pct or 10.0, *(i["concentration_pct"] for i in plan_block.get("inclusions", []))]
        self.vmax_kpa = _VMAX_FACTOR * max(nominal_e_kpa(c) for c in gels)

    def gate(self, displacement_um: np.ndarray, *, push_index: int, lateral_mm: float) -> SequenceMap:
        """A push's map now, in the caller's thread: for the QC's uncertainty gate."""
        return map_sequence(self.mapping.model.current(), displacement_um, self.roi, push_index=push_index,
                            lateral_mm=lateral_mm)

    def add(self, record: SequenceRecord, sequence_map: SequenceMap | None = None) -> None:
        """A written sequence: mapped beside the acquisition unless ``sequence_map`` already is its map."""
        force = float(np.mean(record.contact_force_n)) if np.size(record.contact_force_n) else None
        push = _Push(record.push_index, record.push_lateral_mm, not record.failed, record.qc.reason, force, record.acquired_at)
        displacement = record.displacement_um

        def job() -> None:
            self._pushes.setdefault(record.position_index, {})[record.push_index] = push
            if sequence_map is not None:
                self._maps.setdefault(record.position_index, {})[record.push_index] = sequence_map
            elif displacement is not None:
                self._maps.setdefault(record.position_index, {})[record.push_index] = map_sequence(
                    self.mapping.model.current(), displacement, self.roi, push_index=record.push_index,
                    lateral_mm=record.push_lateral_mm)

        self.mapping.submit(job)

    def position_done(self, position: int, xy_mm: tuple[float, float]) -> None:
        """Every push of ``position`` is written: compound and publish once its maps are done."""
        self._published[position] = self.mapping.submit(lambda: self._publish(position, xy_mm))

    def position_map(self, position: int) -> PositionMap | None:
        """The published map of ``position`` (waits for it); None if it was never asked or failed."""
        future = self._published.get(position)
        result = future.result() if future is not None else None
        return result if isinstance(result, PositionMap) else None

    def _publish(self, position: int, xy_mm: tuple[float, float]) -> PositionMap | None:
        maps = self._maps.pop(position, {})
        pushes = self._pushes.pop(position, {})
        if not pushes:
            return None
        rows = [PushMap(push=p.push, lateral_mm=p.lateral_mm, qc_passed=p.qc_passed, qc_reason=p.qc_reason,
                        contact_force_n=p.contact_force_n,
                        median_kpa=maps[k].median_kpa if k in maps else None,
                        median_sigma_kpa=_median(maps[k].sigma_kpa) if k in maps else None,
                        roi_sigma=maps[k].roi_sigma if k in maps else None)
                for k, p in sorted(pushes.items())]
        estimate, sigma, relative = _compound(list(maps.values()), self.grid)
        offsets, strips = strip_sigma(relative, self.grid.lateral_m * 1e3, strips=MAP_STRIPS)
        # The checkpoints that made these maps: a newer one may have landed since, or during the position.
        checkpoint = ", ".join(sorted({m.checkpoint for m in maps.values()})) or "none (no push mapped)"
        last_push_at = max(p.acquired_at for p in pushes.values())
        title = f"{self.info.session_id} position {position} ({xy_mm[0]:.1f}, {xy_mm[1]:.1f} mm): mean of {len(maps)} pushes"
        from shearlab.training.figures import estimate_sigma_panels

        figure = estimate_sigma_panels({f"position {position}": (estimate, sigma)}, self.grid, vmax_kpa=self.vmax_kpa,
                                       sigma_vmax_kpa=_SIGMA_VMAX_SHARE * self.vmax_kpa, title=title)
        position_map = PositionMap(
            session_id=self.info.session_id, position=position, x_mm=xy_mm[0], y_mm=xy_mm[1], pushes=rows,
            strip_offsets_mm=list(offsets), strip_sigma=[None if not np.isfinite(v) else v for v in strips],
            checkpoint=checkpoint, last_push_at=last_push_at, mapped_at=datetime.now(UTC).isoformat())
        write_position_map(self.path, position_map, _png(figure))
        self._artifact(position_map)
        return position_map

    def _artifact(self, position_map: PositionMap) -> None:
        lag_s = (datetime.fromisoformat(position_map.mapped_at) - datetime.fromisoformat(position_map.last_push_at)).total_seconds()
        lines = [f"### {self.info.session_id}, position {position_map.position} "
                 f"({position_map.x_mm:.1f}, {position_map.y_mm:.1f} mm)", "",
                 "| push | lateral mm | median E kPa | median sigma kPa | ROI sigma | contact N | QC |",
                 "|---|---|---|---|---|---|---|"]
        for p in position_map.pushes:
            lines.append(f"| {p.push} | {p.lateral_mm:+.1f} | {_fmt(p.median_kpa, '.1f')} | {_fmt(p.median_sigma_kpa, '.2f')} "
                         f"| {_fmt(None if p.roi_sigma is None else 100 * p.roi_sigma, '.1f')} % | {_fmt(p.contact_force_n, '.3f')} "
                         f"| {'ok' if p.qc_passed else p.qc_reason} |")
        url = f"{self.mapping.live_url}/maps/{self.info.session_id}/{position_map.position}.png"
        lines += ["", f"![map of position {position_map.position}]({url})", "",
                  f"Model `{position_map.checkpoint}`; published {lag_s:.1f} s after the last push. "
                  f"The image is served by `shearlab live` at {self.mapping.live_url}."]
        create_markdown_artifact(key=artifact_key("live", self.info.session_id, f"p{position_map.position:03d}"),
                                 markdown="\n".join(lines),
                                 description=f"live map of {self.info.session_id} position {position_map.position}")


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _compound(maps: list[SequenceMap], grid: ImageGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the pushes' maps of the estimate (kPa), the sigma (kPa) and the relative sigma; NaN where
    no push has a value."""
    empty = np.full((grid.depth_m.size, grid.lateral_m.size), np.nan)
    if not maps:
        return empty, empty, empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel no push mapped stays NaN
        estimate = np.nanmean(np.stack([m.estimate_kpa for m in maps]), axis=0)
        sigma = np.nanmean(np.stack([m.sigma_kpa for m in maps]), axis=0)
        relative = np.nanmean(np.stack([m.sigma if m.sigma is not None else empty for m in maps]), axis=0)
    return estimate, sigma, relative


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


__all__ = ["LatestModel", "LiveMapping", "LoadedModel", "SequenceMap", "SessionMaps", "map_sequence"]
