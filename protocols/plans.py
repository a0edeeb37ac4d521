"""Plan files: what a calibration batch or an acquisition campaign should do (TOML, validated).

Plans describe; flows act. A plan names phantoms by the lab's records (batch ids, where the block
stands), never by anything the twin knows internally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from shearlab.protocols.config_files import load_toml_model, write_toml_model
from shearlab.protocols.fields import ConcentrationPct, Cron, ProbeForceN, ProbeSpeedMS, ReachMm, SafeName
from shearlab.protocols.phantoms import Inclusion
from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, ImagingSpec, ProbeGeometry
from shearlab.protocols.strict_model import StrictModel

Positive = Annotated[float, Field(gt=0)]
# The paper's window sides, px.
WindowPx = Literal[65, 33, 17, 9, 5]
# A hexapod speed, mm/s: the H-820's top speed is 20 mm/s.
HexapodSpeedMmS = Annotated[float, Field(gt=0, le=20)]
# A force on the Nano17 under the plate, N: it saturates at 17 N in z.
IndenterForceN = Annotated[float, Field(gt=0, le=17)]
# A strain of a cylinder: 1 would crush it to nothing.
Strain = Annotated[float, Field(ge=0, lt=1)]
# A block side or a lift, mm: nothing on the table is taller or wider than half a metre.
TableMm = Annotated[float, Field(gt=0, le=500)]


class CalibrationBatch(StrictModel):
    """A gelatin batch and how many of its cylinders to indent: the batch modulus's interval comes
    from the spread between them, so at least 2 (the paper indents 8)."""

    batch_id: SafeName
    concentration_pct: ConcentrationPct
    cylinders: int = Field(default=8, ge=2, le=64)
    # The indentation rig's plate is 60 mm across and the hexapod lifts it at most 50 mm clear.
    radius_mm: float = Field(default=10.0, gt=0, le=30)
    length_mm: float = Field(default=40.0, gt=0, le=100)


class IndentationSettings(StrictModel):
    """SPEC §2: 0.01 mm/s, 200 Hz, stop at 2 N, fit over 2-7 % strain."""

    plate_speed_mm_s: HexapodSpeedMmS = 0.01
    # The F/T controller streams at most 7 kHz.
    sample_rate_hz: float = Field(default=200.0, gt=0, le=7000)
    stop_force_n: IndenterForceN = 2.0
    approach_speed_mm_s: HexapodSpeedMmS = 0.5
    # First touch: the bias-corrected force rises above this (10x the Nano17's 3.1 mN resolution).
    touch_force_n: IndenterForceN = 0.03
    # Strain stop: past the fit range the run adds nothing but time.
    max_strain: Strain = 0.12
    retract_mm: float = Field(default=5.0, gt=0, le=50)
    strain_range: tuple[Strain, Strain] = (0.02, 0.07)

    @model_validator(mode="after")
    def _consistent(self) -> IndentationSettings:
        low, high = self.strain_range
        if low >= high:
            raise ValueError(f"strain_range {list(self.strain_range)} must run from low to high")
        if high > self.max_strain:
            raise ValueError(f"strain_range ends at {high}, past max_strain {self.max_strain}: the run stops before it")
        if self.touch_force_n >= self.stop_force_n:
            raise ValueError(f"touch_force_n {self.touch_force_n} N must be below stop_force_n {self.stop_force_n} N")
        return self


class CalibrationPlan(StrictModel):
    name: SafeName = "calibration"
    batches: tuple[CalibrationBatch, ...] = Field(min_length=1)
    indentation: IndentationSettings = IndentationSettings()
    out_dir: Path = Path("out/calibration")
    cron: Cron | None = None

    @model_validator(mode="after")
    def _unique_batches(self) -> CalibrationPlan:
        ids = [b.batch_id for b in self.batches]
        if len(set(ids)) != len(ids):
            raise ValueError(f"batch ids {ids} repeat: each batch has one session file and one record")
        return self


class ContactSettings(StrictModel):
    """Force-controlled probe contact (SPEC §2: a repeatable 0.2 N)."""

    target_force_n: ProbeForceN = 0.2
    tolerance_n: ProbeForceN = 0.02
    settle_s: float = Field(default=0.5, gt=0, le=60)
    # Proportional gain of the velocity loop, (m/s) per N of force error; the controller lowers it
    # when the measured loop period would make gain x stiffness x period too large.
    gain_m_s_per_n: float = Field(default=0.004, gt=0, le=1)
    max_speed_m_s: ProbeSpeedMS = 0.002
    # Stiffest contact expected: the probe face (37 x 10 mm) on 17.5 % gel, 2 E* a ~ 3.7 kN/m.
    # A million N/m is steel under the probe.
    design_stiffness_n_per_m: float = Field(default=4000.0, gt=0, le=1e6)
    approach_clearance_mm: TableMm = 1.0
    approach_speed_m_s: ProbeSpeedMS = 0.02
    lift_clearance_mm: TableMm = 15.0
    timeout_s: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _tolerance(self) -> ContactSettings:
        if self.tolerance_n >= self.target_force_n:
            raise ValueError(f"tolerance_n {self.tolerance_n} N must be below target_force_n {self.target_force_n} N")
        return self


class QcSettings(StrictModel):
    """Quality gate per sequence; a failure is re-acquired up to ``max_attempts`` times."""

    max_force_error_n: ProbeForceN = 0.05
    # A push moves gel by a few to ~15 um; a millimetre is no shear wave.
    min_peak_um: float = Field(default=0.5, gt=0, le=1000)
    min_frame_correlation: float = Field(default=0.5, ge=0, le=1)
    min_displacement_snr_db: float = Field(default=6.0, ge=-60, le=100)
    # The map is too uncertain: the median over the ROI of the model's calibrated relative sigma lies above
    # this. Checked only when the campaign has a ``checkpoint`` whose net has a sigma head. 0.25: on the
    # quick demo's held-out sequences the per-sequence median ROI sigma lies below ~0.15 for 99 % of them
    # (the report's uncertainty table), so 0.25 re-acquires only maps well outside what the model knows.
    max_roi_sigma: float = Field(default=0.25, gt=0, le=10)
    # Off: no push waits for its map (the live map is then made wholly beside the acquisition).
    uncertainty_gate: bool = True
    # Each attempt is a push: the scanner's duty limit and the transducer's heating bound them.
    max_attempts: int = Field(default=3, ge=1, le=20)


class BlockTarget(StrictModel):
    """A phantom as the lab knows it: where it stands and which batch it was cast from."""

    name: SafeName
    batch_id: SafeName
    concentration_pct: ConcentrationPct
    x_mm: ReachMm
    y_mm: ReachMm
    size_mm: tuple[TableMm, TableMm, TableMm] = (100.0, 100.0, 100.0)
    inclusions: tuple[Inclusion, ...] = ()
    positions_mm: tuple[tuple[ReachMm, ReachMm], ...] | None = Field(default=None, min_length=1)


class AdaptiveSettings(StrictModel):
    """``strategy = "adaptive"``: the next probe position goes where the model is least sure (``protocols.adaptive``).

    ``candidates`` positions are drawn as the random strategy draws them (same workspace and edge margin,
    from the plan's seed); each is scored by the model's expected uncertainty over the strip of gel the
    probe would image, predicted by a Gaussian process over the sigma mapped at the positions done so far,
    plus ``exploration`` times its standard deviation (an upper confidence bound: unexplored gel counts
    as uncertain). Positions closer than ``min_spacing_mm`` to one already taken are not candidates.
    """

    candidates: int = Field(default=64, ge=2, le=10_000)
    exploration: float = Field(default=1.0, ge=0, le=100)
    length_scale_mm: float = Field(default=8.0, gt=0, le=250)
    min_spacing_mm: float = Field(default=4.0, ge=0, le=250)


class CampaignPlan(StrictModel):
    name: SafeName
    kind: Literal["block", "inclusion"] = "block"
    blocks: tuple[BlockTarget, ...] = Field(min_length=1)
    n_positions: int = Field(default=80, ge=1, le=10_000)
    edge_margin_mm: float = Field(default=25.0, ge=0, le=250)
    push_lateral_mm: tuple[float, ...] = Field(default=PAPER_PUSH_LATERAL_MM, min_length=1)
    seed: int = Field(default=0, ge=0)
    table_z_mm: ReachMm = 0.0
    probe: ProbeGeometry = ProbeGeometry()
    imaging: ImagingSpec = ImagingSpec()
    contact: ContactSettings = ContactSettings()
    qc: QcSettings = QcSettings()
    out_dir: Path = Path("out/sessions")
    calibration_dir: Path = Path("out/calibration")
    store_iq: bool = False
    cron: Cron | None = None
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
        cramped = [b.name for b in self.blocks if b.positions_mm is None and self.edge_margin_mm >= min(b.size_mm[:2]) / 2]
        if cramped:
            raise ValueError(f"edge_margin_mm {self.edge_margin_mm} leaves no room for a probe position on {', '.join(cramped)}")
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"block names {names} repeat: each block has its own session file")
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

    name: SafeName = "training"
    sessions_dir: Path = Path("out/sessions")
    calibration_dir: Path = Path("out/calibration")
    out_dir: Path = Path("out/training")
    protocol: Literal["cv", "loco"] = "cv"
    fold: int = Field(default=0, ge=0)
    n_folds: int = Field(default=4, ge=2, le=100)
    held_out_pct: float = Field(default=10.0, gt=0, lt=100)
    window_px: WindowPx = 17
    init_channels: int = Field(default=16, ge=1, le=1024)
    growth_rate: int = Field(default=16, ge=1, le=1024)
    # The CNN also predicts each estimate's uncertainty (a log-normal per pixel), calibrated on the
    # validation positions and checked on the test ones (training.uncertainty).
    sigma_head: bool = True
    epochs: int = Field(default=250, ge=1, le=100_000)
    batch_size: int = Field(default=250, ge=1, le=65_536)
    lr: float = Field(default=1e-4, gt=0, le=1)
    seed: int = Field(default=0, ge=0)
    # Nets trained with seeds seed, seed + 1, ...: the report gives the spread of the headline figures.
    repeats: int = Field(default=1, ge=1)
    # Training windows per sequence per epoch and where they are centred (paper: one, in the ROI; "image":
    # anywhere a window fits, so the net also sees the late, weak arrivals far from the push).
    windows_per_sequence: int = Field(default=1, ge=1)
    train_region: Literal["roi", "image"] = "roi"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Eq. 1's alpha is fitted on the training sequences of this concentration (paper: one concentration).
    alpha_concentration_pct: ConcentrationPct = 10.0
    evaluate_inclusions: bool = True
    # Paper: the block-trained net is fine-tuned for 10 epochs on inclusion data. Windows centred on the
    # inclusion make this share of the fine-tuning windows (it is 10-20 % of the image); the learning
    # rate starts at the training one (or ``fine_tune_lr``) and anneals as in training (TrainConfig.lr_at).
    fine_tune_epochs: int = Field(default=10, ge=1)
    fine_tune_lr: float | None = Field(default=None, gt=0)
    fine_tune_inclusion_share: float = Field(default=0.5, ge=0, le=1)
    # Protocol (b) besides the plan's own: one net per concentration left out (paper: 7.5-15 %).
    loco_concentrations_pct: tuple[float, ...] = ()
    # Shown at the top of the report, e.g. which demo scale produced the data.
    description: str = ""
    # The twin world the sessions came from, if any: provenance only.
    world: Path | None = None
    cron: Cron | None = None

    @model_validator(mode="after")
    def _fold_exists(self) -> TrainingPlan:
        if self.protocol == "cv" and self.fold >= self.n_folds:
            raise ValueError(f"fold {self.fold} does not exist: folds are numbered 0 to {self.n_folds - 1}")
        return self


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
