"""Plan files: what a calibration batch or an acquisition campaign should do (TOML, validated).

Plans describe; flows act. A plan names phantoms by the lab's records (batch ids, where the block
stands), never by anything the twin knows internally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from shearlab.protocols.config_files import load_toml_model, write_toml_model
from shearlab.protocols.phantoms import Inclusion
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, ImagingSpec, ProbeGeometry
from shearlab.protocols.strict_model import StrictModel

Positive = Annotated[float, Field(gt=0)]
# The paper's window sides, px.
WindowPx = Literal[65, 33, 17, 9, 5]


class CalibrationBatch(StrictModel):
    """A gelatin batch and how many of its cylinders to indent: the batch modulus's interval comes
    from the spread between them, so at least 2 (the paper indents 8)."""

    batch_id: str
    concentration_pct: float
    cylinders: int = Field(default=8, ge=2)
    radius_mm: Positive = 10.0
    length_mm: Positive = 40.0


class IndentationSettings(StrictModel):
    """SPEC §2: 0.01 mm/s, 200 Hz, stop at 2 N, fit over 2-7 % strain."""

    plate_speed_mm_s: Positive = 0.01
    sample_rate_hz: Positive = 200.0
    stop_force_n: Positive = 2.0
    approach_speed_mm_s: Positive = 0.5
    # First touch: the bias-corrected force rises above this (10x the Nano17's 3.1 mN resolution).
    touch_force_n: Positive = 0.03
    # Strain stop: past the fit range the run adds nothing but time.
    max_strain: Positive = 0.12
    retract_mm: Positive = 5.0
    strain_range: tuple[float, float] = (0.02, 0.07)


class CalibrationPlan(StrictModel):
    name: str = "calibration"
    batches: tuple[CalibrationBatch, ...] = Field(min_length=1)
    indentation: IndentationSettings = IndentationSettings()
    out_dir: Path = Path("out/calibration")
    cron: str | None = None


class ContactSettings(StrictModel):
    """Force-controlled probe contact (SPEC §2: a repeatable 0.2 N)."""

    target_force_n: Positive = 0.2
    tolerance_n: Positive = 0.02
    settle_s: Positive = 0.5
    # Proportional gain of the velocity loop, (m/s) per N of force error; the controller lowers it
    # when the measured loop period would make gain x stiffness x period too large.
    gain_m_s_per_n: Positive = 0.004
    max_speed_m_s: Positive = 0.002
    # Stiffest contact expected: the probe face (37 x 10 mm) on 17.5 % gel, 2 E* a ~ 3.7 kN/m.
    design_stiffness_n_per_m: Positive = 4000.0
    approach_clearance_mm: Positive = 1.0
    approach_speed_m_s: Positive = 0.02
    lift_clearance_mm: Positive = 15.0
    timeout_s: Positive = 60.0


class QcSettings(StrictModel):
    """Quality gate per sequence; a failure is re-acquired up to ``max_attempts`` times."""

    max_force_error_n: Positive = 0.05
    min_peak_um: Positive = 0.5
    min_frame_correlation: float = Field(default=0.5, ge=0, le=1)
    min_displacement_snr_db: float = 6.0
    # The map is too uncertain: the median over the ROI of the model's calibrated relative sigma lies above
    # this. Checked only when the campaign has a ``checkpoint`` whose net has a sigma head. 0.25: on the
    # quick demo's held-out sequences the per-sequence median ROI sigma lies below ~0.15 for 99 % of them
    # (the report's uncertainty table), so 0.25 re-acquires only maps well outside what the model knows.
    max_roi_sigma: Positive = 0.25
    # Off: no push waits for its map (the live map is then made wholly beside the acquisition).
    uncertainty_gate: bool = True
    max_attempts: int = Field(default=3, ge=1)


class BlockTarget(StrictModel):
    """A phantom as the lab knows it: where it stands and which batch it was cast from."""

    name: str
    batch_id: str
    concentration_pct: float
    x_mm: float
    y_mm: float
    size_mm: tuple[float, float, float] = (100.0, 100.0, 100.0)
    inclusions: tuple[Inclusion, ...] = ()
    positions_mm: tuple[tuple[float, float], ...] | None = None


class AdaptiveSettings(StrictModel):
    """``strategy = "adaptive"``: the next probe position goes where the model is least sure (``protocols.adaptive``).

    ``candidates`` positions are drawn as the random strategy draws them (same workspace and edge margin,
    from the plan's seed); each is scored by the model's expected uncertainty over the strip of gel the
    probe would image, predicted by a Gaussian process over the sigma mapped at the positions done so far,
    plus ``exploration`` times its standard deviation (an upper confidence bound: unexplored gel counts
    as uncertain). Positions closer than ``min_spacing_mm`` to one already taken are not candidates.
    """

    candidates: int = Field(default=64, ge=2)
    exploration: float = Field(default=1.0, ge=0)
    length_scale_mm: Positive = 8.0
    min_spacing_mm: float = Field(default=4.0, ge=0)


class CampaignPlan(StrictModel):
    name: str
    kind: Literal["block", "inclusion"] = "block"
    blocks: tuple[BlockTarget, ...] = Field(min_length=1)
    n_positions: int = Field(default=80, ge=1)
    edge_margin_mm: float = Field(default=25.0, ge=0)
    push_lateral_mm: tuple[float, ...] = PAPER_PUSH_LATERAL_MM
    seed: int = 0
    table_z_mm: float = 0.0
    probe: ProbeGeometry = ProbeGeometry()
    imaging: ImagingSpec = ImagingSpec()
    contact: ContactSettings = ContactSettings()
    qc: QcSettings = QcSettings()
    out_dir: Path = Path("out/sessions")
    calibration_dir: Path = Path("out/calibration")
    store_iq: bool = False
    cron: str | None = None
    # The latest model: a checkpoint file, or a folder whose newest ``*.pt`` is used (looked up again at
    # every position). With it the campaign maps each position beside the acquisition (the live map), gates
    # QC on the map's uncertainty (``qc.max_roi_sigma``) and can choose positions adaptively.
    checkpoint: Path | None = None
    # "random": the paper's uniform draw; "adaptive": where the model is least sure (needs ``checkpoint``).
    strategy: Literal["random", "adaptive"] = "random"
    adaptive: AdaptiveSettings = AdaptiveSettings()

    @model_validator(mode="after")
    def _pushes_on_probe(self) -> CampaignPlan:
        half = self.probe.aperture_mm / 2
        bad = [x for x in self.push_lateral_mm if abs(x) > half]
        if bad:
            raise ValueError(f"push positions {bad} mm lie outside the {self.probe.aperture_mm:.1f} mm aperture")
        return self

    @model_validator(mode="after")
    def _adaptive_needs_a_model(self) -> CampaignPlan:
        if self.strategy != "adaptive":
            return self
        if self.checkpoint is None:
            raise ValueError('strategy = "adaptive" needs checkpoint: the model whose uncertainty picks the positions')
        listed = [b.name for b in self.blocks if b.positions_mm is not None]
        if listed:
            raise ValueError(f'strategy = "adaptive" picks the positions itself: remove positions_mm of {", ".join(listed)}')
        return self


class TrainingPlan(StrictModel):
    """Dataset -> model -> evaluation -> report (SPEC §2 "Learning"; paper values by default)."""

    name: str = "training"
    sessions_dir: Path = Path("out/sessions")
    calibration_dir: Path = Path("out/calibration")
    out_dir: Path = Path("out/training")
    protocol: Literal["cv", "loco"] = "cv"
    fold: int = Field(default=0, ge=0)
    n_folds: int = Field(default=4, ge=2)
    held_out_pct: float = 10.0
    window_px: WindowPx = 17
    init_channels: int = Field(default=16, ge=1)
    growth_rate: int = Field(default=16, ge=1)
    # The CNN also predicts each estimate's uncertainty (a log-normal per pixel), calibrated on the
    # validation positions and checked on the test ones (training.uncertainty).
    sigma_head: bool = True
    epochs: int = Field(default=250, ge=1)
    batch_size: int = Field(default=250, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    seed: int = 0
    # Nets trained with seeds seed, seed + 1, ...: the report gives the spread of the headline figures.
    repeats: int = Field(default=1, ge=1)
    # Training windows per sequence per epoch and where they are centred (paper: one, in the ROI; "image":
    # anywhere a window fits, so the net also sees the late, weak arrivals far from the push).
    windows_per_sequence: int = Field(default=1, ge=1)
    train_region: Literal["roi", "image"] = "roi"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Eq. 1's alpha is fitted on the training sequences of this concentration (paper: one concentration).
    alpha_concentration_pct: float = 10.0
    evaluate_inclusions: bool = True
    # Paper: the block-trained net is fine-tuned for 10 epochs on inclusion data. Windows centred on the
    # inclusion make this share of the fine-tuning windows (it is 10-20 % of the image); the learning
    # rate defaults to the training one.
    fine_tune_epochs: int = Field(default=10, ge=1)
    fine_tune_lr: float | None = Field(default=None, gt=0)
    fine_tune_inclusion_share: float = Field(default=0.5, ge=0, le=1)
    # Protocol (b) besides the plan's own: one net per concentration left out (paper: 7.5-15 %).
    loco_concentrations_pct: tuple[float, ...] = ()
    # Shown at the top of the report, e.g. which demo scale produced the data.
    description: str = ""
    # The twin world the sessions came from, if any: provenance only.
    world: Path | None = None
    cron: str | None = None


def load_training_plan(path: Path | str) -> TrainingPlan:
    return load_toml_model(path, TrainingPlan)


def load_calibration_plan(path: Path | str) -> CalibrationPlan:
    return load_toml_model(path, CalibrationPlan)


def load_campaign_plan(path: Path | str) -> CampaignPlan:
    return load_toml_model(path, CampaignPlan)


Plan = CalibrationPlan | CampaignPlan | TrainingPlan


def write_plan(path: Path | str, plan: Plan) -> Path:
    """Write a plan built in code as the plan file its loader reads back (defaults left out)."""
    return write_toml_model(path, plan)
