"""``shearlab twin realism``: how hard the twin's lab is, measured on sessions acquired through it.

It calibrates the world's batches and runs a small block campaign through the normal flows (or reads
sessions a lab already has), then measures what a lab could measure on its own rig's data, each next
to the twin's configured magnitude and its source, so the two labs can be compared:

- the two shortcut checks: how well a one-number amplitude summary predicts the label (leaving one
  probe position out; it should do no better than half of predicting the mean), and how alike the
  same push looks at two positions of one block (focus-band space-time plots; at most 0.95);
- the group speed (time to peak) of every block and its spread over positions;
- the spread of the push's peak displacement over positions, the displacement SNR, the fraction of
  sequences with a decorrelated frame, and the spread between the cylinders of each batch.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shearlab.datasets.catalogue import Catalogue
from shearlab.datasets.reader import SequenceRef, SessionReader
from shearlab.devices.twin.realism import Realism
from shearlab.devices.twin.world_config import load_world
from shearlab.orchestrator.calibration_records import load_record
from shearlab.orchestrator.demo import SCALES, Rigs, acquire, calibrate, write_plans
from shearlab.protocols.signal.amplitude import (
    AMPLITUDE_FEATURES,
    REGRESSION_FAMILIES,
    amplitude_summary,
    leave_one_group_out_mae,
)
from shearlab.protocols.signal.time_to_peak import group_speed_m_s

# Depth band of the space-time plots the position check compares: the push's focal zone.
FOCUS_BAND_M = (8e-3, 12e-3)
# Limits the issue sets for the two shortcut checks.
MIN_SHORTCUT_RATIO = 0.5
MAX_POSITION_CORRELATION = 0.95
# A tracking frame whose frame-to-frame jitter exceeds this multiple of its sequence's median is a dropout.
DROPOUT_JITTER_FACTOR = 4.0
DEFAULT_POSITIONS = 3


@dataclass
class ShortcutCheck:
    """How well the best one-feature amplitude regression predicts the label, leaving a position out."""

    feature: str
    family: str
    mae_kpa: float
    mean_predictor_mae_kpa: float

    @property
    def ratio(self) -> float:
        return self.mae_kpa / self.mean_predictor_mae_kpa

    @property
    def passed(self) -> bool:
        return self.ratio >= MIN_SHORTCUT_RATIO


@dataclass
class BlockFindings:
    """What one block's sessions show."""

    session_id: str
    concentration_pct: float
    label_e_kpa: float
    positions: int
    sequences: int
    group_speed_m_s: float
    group_speed_cv: float
    peak_cv: float
    snr_db: tuple[float, float, float]
    position_correlation_median: float


@dataclass
class RealismReport:
    """Everything ``shearlab twin realism`` measured, with the twin's configured magnitudes."""

    sessions_dir: str
    shortcuts: list[ShortcutCheck]
    blocks: list[BlockFindings]
    position_correlation: dict[str, float]
    dropout_fraction: float
    cylinder_cv: dict[str, float]
    configured: Realism = field(default_factory=Realism)

    @property
    def strongest_shortcut(self) -> ShortcutCheck:
        return min(self.shortcuts, key=lambda s: s.ratio)

    @property
    def passed(self) -> bool:
        return self.strongest_shortcut.passed and self.position_correlation["median"] <= MAX_POSITION_CORRELATION

    def to_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["configured"] = self.configured.model_dump(mode="json")
        data["strongest_shortcut"] = {**dataclasses.asdict(self.strongest_shortcut), "ratio": self.strongest_shortcut.ratio}
        data["passed"] = self.passed
        return data


def acquire_sessions(out: Path, *, world: Path | None = None, positions: int = DEFAULT_POSITIONS,
                     rigs: Rigs = Rigs()) -> tuple[Path, Path]:
    """Calibrate every batch (3 cylinders) and run a block campaign of ``positions`` positions on every
    homogeneous block of ``world``, through the normal flows, on the twins of ``rigs``. Returns the
    sessions and calibration folders."""
    scale = dataclasses.replace(SCALES["quick"], positions=positions)
    plans = write_plans(out, scale, world)
    calibrate(plans, world, rigs=rigs)
    acquire(plans, ("blocks",), world, rigs=rigs)
    return out / "sessions", out / "calibration"


def _focus_band(volume: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
    rows = (depth_m >= FOCUS_BAND_M[0]) & (depth_m <= FOCUS_BAND_M[1])
    return volume[:, rows, :].mean(axis=1)


def _has_dropout(volume: np.ndarray) -> bool:
    jitter = np.median(np.abs(np.diff(volume, axis=0)), axis=(1, 2))
    return bool(np.any(jitter > DROPOUT_JITTER_FACTOR * np.median(jitter)))


def _correlations(plots: dict[int, list[np.ndarray]]) -> list[float]:
    values = []
    for same_push in plots.values():
        for a, b in itertools.combinations(same_push, 2):
            values.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
    return values


def measure(sessions_dir: Path, calibration_dir: Path | None = None, *, world: Path | None = None) -> RealismReport:
    """Measure the realism figures of every labelled block sequence under ``sessions_dir``; ``world``
    (default: the shipped world) gives the configured magnitudes they are shown beside."""
    catalogue = Catalogue(sessions_dir)
    refs = catalogue.query(kind="block", labelled=True)
    if not refs:
        raise ValueError(f"{sessions_dir}: no labelled block sequences to measure")
    by_session: dict[str, list[SequenceRef]] = defaultdict(list)
    for ref in refs:
        by_session[ref.session_id].append(ref)
    features: dict[str, list[float]] = {name: [] for name in AMPLITUDE_FEATURES}
    labels: list[float] = []
    groups: list[tuple[str, int]] = []
    all_correlations: list[float] = []
    dropouts = 0
    blocks = []
    for session_id, session_refs in sorted(by_session.items(), key=lambda item: (item[1][0].concentration_pct or 0.0, item[0])):
        path = session_refs[0].path
        with SessionReader(path) as reader:
            grid, info = reader.grid, reader.info
            volumes: list[np.ndarray] = []
            snrs: list[float] = []
            for ref in session_refs:
                sequence = reader.read_sequence(ref.key)
                if sequence.displacement_um is None:
                    raise ValueError(f"{path}: labelled sequence {ref.key} has no displacement")
                volumes.append(sequence.displacement_um)
                snrs.append(sequence.qc.figures.get("displacement_snr_db", float("nan")))
        focus_m = info.sequence.push.focus_depth_mm * 1e-3
        plots: dict[int, list[np.ndarray]] = defaultdict(list)
        peaks: dict[int, list[float]] = defaultdict(list)
        speeds: dict[int, list[float]] = defaultdict(list)
        for ref, volume in zip(session_refs, volumes, strict=True):
            summary = amplitude_summary(volume, grid, push_lateral_m=ref.push_lateral_mm * 1e-3, focus_depth_m=focus_m)
            for name in AMPLITUDE_FEATURES:
                features[name].append(summary[name])
            labels.append(float("nan") if ref.label_e_kpa is None else ref.label_e_kpa)
            groups.append((session_id, ref.position_index))
            plots[ref.push_index].append(_focus_band(volume, grid.depth_m))
            peaks[ref.push_index].append(summary["peak_near_focus_um"])
            speeds[ref.position_index].append(group_speed_m_s(volume, grid, push_lateral_m=ref.push_lateral_mm * 1e-3))
            dropouts += _has_dropout(volume)
        correlations = _correlations(plots)
        all_correlations += correlations
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_position = np.array([np.nanmedian(v) for v in speeds.values()])
        finite = per_position[np.isfinite(per_position)]
        snr_p5, snr_median, snr_p95 = (float(v) for v in np.nanpercentile(snrs, [5, 50, 95]))
        blocks.append(BlockFindings(
            session_id=session_id, concentration_pct=float(info.concentration_pct or float("nan")),
            label_e_kpa=float("nan") if session_refs[0].label_e_kpa is None else session_refs[0].label_e_kpa,
            positions=len(speeds), sequences=len(session_refs),
            group_speed_m_s=float(np.median(finite)) if finite.size else float("nan"),
            group_speed_cv=float(finite.std() / finite.mean()) if finite.size > 1 else float("nan"),
            peak_cv=float(np.median([float(np.std(v) / np.mean(v)) for v in peaks.values() if len(v) > 1] or [np.nan])),
            snr_db=(snr_p5, snr_median, snr_p95),
            position_correlation_median=float(np.median(correlations)) if correlations else float("nan"),
        ))
    shortcuts = []
    mean_mae = leave_one_group_out_mae(features[AMPLITUDE_FEATURES[0]], labels, groups, family=None)
    for name in AMPLITUDE_FEATURES:
        best = min(((family, leave_one_group_out_mae(features[name], labels, groups, family=family))
                    for family in REGRESSION_FAMILIES), key=lambda pair: pair[1])
        shortcuts.append(ShortcutCheck(feature=name, family=best[0], mae_kpa=best[1], mean_predictor_mae_kpa=mean_mae))
    correlation = np.asarray(all_correlations)
    cylinder_cv = {}
    if calibration_dir is not None:
        for batch in sorted({info.batch_id for info in catalogue.sessions.values() if info.kind == "block"}):
            record = load_record(calibration_dir, batch)
            values = np.asarray(record.extra.get("cylinder_e_kpa", []), dtype=float)
            if values.size > 1:
                cylinder_cv[batch] = float(values.std(ddof=1) / values.mean())
    return RealismReport(
        sessions_dir=str(sessions_dir), shortcuts=shortcuts, blocks=blocks,
        position_correlation={"median": float(np.median(correlation)), "p90": float(np.percentile(correlation, 90)),
                              "max": float(correlation.max()), "pairs": int(correlation.size)},
        dropout_fraction=dropouts / len(labels), cylinder_cv=cylinder_cv, configured=load_world(world).realism,
    )


def render_markdown(report: RealismReport) -> str:
    """The report a lab reads: each check with its limit, each effect with its measured magnitude."""
    strongest = report.strongest_shortcut
    verdict = "passes" if report.passed else "FAILS"
    lines = [
        "# How hard the twin's lab is", "",
        f"Sessions: `{report.sessions_dir}`. Overall: the twin {verdict} the two shortcut checks.", "",
        "## Shortcut checks", "",
        "| check | measured | limit | verdict |", "| --- | --- | --- | --- |",
    ]
    for check in report.shortcuts:
        lines.append(f"| label from `{check.feature}` ({check.family} regression, one position left out) | "
                     f"MAE {check.mae_kpa:.1f} kPa = {check.ratio:.2f} x predicting the mean "
                     f"({check.mean_predictor_mae_kpa:.1f} kPa) | >= {MIN_SHORTCUT_RATIO} | "
                     f"{'ok' if check.passed else 'too predictive'} |")
    pc = report.position_correlation
    lines.append(f"| same push at two positions of a block (focus band, {pc['pairs']} pairs) | median {pc['median']:.3f}, "
                 f"90th percentile {pc['p90']:.3f}, max {pc['max']:.3f} | median <= {MAX_POSITION_CORRELATION} | "
                 f"{'ok' if pc['median'] <= MAX_POSITION_CORRELATION else 'too alike'} |")
    lines += ["", f"The strongest shortcut is `{strongest.feature}` at {strongest.ratio:.2f} x the mean predictor's error.", "",
              "## Blocks", "",
              "| session | conc. % | label kPa | positions | group speed m/s (TTP) | speed CV over positions | "
              "peak displacement CV over positions | displacement SNR dB (5/50/95 %) | same-push correlation |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for b in report.blocks:
        lines.append(f"| {b.session_id} | {b.concentration_pct:g} | {b.label_e_kpa:.1f} | {b.positions} | "
                     f"{b.group_speed_m_s:.2f} | {b.group_speed_cv:.1%} | {b.peak_cv:.1%} | "
                     f"{b.snr_db[0]:.0f} / {b.snr_db[1]:.0f} / {b.snr_db[2]:.0f} | {b.position_correlation_median:.3f} |")
    lines += ["", "## Effects", "",
              "| effect | measured here | configured (source in `devices/twin/realism.py`, `docs/twin.md`) |",
              "| --- | --- | --- |"]
    gel, push, echo = report.configured.gel, report.configured.push, report.configured.echo
    cyl = list(report.cylinder_cv.values())
    measured_cyl = f"CV {np.mean(cyl):.1%} (mean over {len(cyl)} batches)" if cyl else "no calibration records given"
    lines += [
        f"| cylinders of one batch differ | {measured_cyl} | sample modulus CV {gel.sample_modulus_cv:.1%} |",
        f"| push output varies (shot, coupling, bubbles, heating, attenuation) | peak displacement CV over positions "
        f"{np.median([b.peak_cv for b in report.blocks]):.1%} (median over blocks and pushes) | shot CV "
        f"{push.shot_intensity_cv:.0%}, coupling CV {push.coupling_intensity_cv:.0%}, bubbles at "
        f"{push.bubble_probability:.0%} of positions, batch attenuation CV {gel.attenuation_batch_cv:.0%} |",
        f"| stiffness fluctuates inside a block | group speed CV over positions "
        f"{np.nanmedian([b.group_speed_cv for b in report.blocks]):.1%} (median; estimator noise included) | modulus CV "
        f"{gel.stiffness_cv:.0%}, correlation length {gel.stiffness_correlation_mm:g} mm |",
        f"| SNR varies by position and depth | displacement SNR "
        f"{min(b.snr_db[0] for b in report.blocks):.0f}-{max(b.snr_db[2] for b in report.blocks):.0f} dB | "
        f"scatterer density CV {gel.scatterer_density_cv:.0%}, coupling both ways, attenuation with depth |",
        f"| decorrelated frames | {report.dropout_fraction:.1%} of sequences | {echo.dropout_probability:.1%} of shots |",
        f"| probe micro-motion, reverberation clutter | not separable in push sequences (fire with the push disabled "
        f"to see them) | drift sigma {echo.drift_um_s_sigma:g} um/s, dither {echo.dither_um[0]:g}-{echo.dither_um[1]:g} um; "
        f"clutter {echo.clutter_db_at_face:g} dB at the face |",
    ]
    return "\n".join(lines) + "\n"


def write(report: RealismReport, out: Path) -> tuple[Path, Path]:
    """Write ``realism.md`` and ``realism.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    markdown, data = out / "realism.md", out / "realism.json"
    markdown.write_text(render_markdown(report))
    data.write_text(json.dumps(report.to_json(), indent=2))
    return markdown, data


__all__ = ["RealismReport", "ShortcutCheck", "acquire_sessions", "measure", "render_markdown", "write"]
