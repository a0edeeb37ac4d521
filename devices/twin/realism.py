"""What makes the twin's data as hard as a real lab's, with the source of every magnitude (issue 10).

The world file's ``[realism]`` table sets these; ``Realism.ideal()`` switches every effect off and gives
the first twin's physics, which the validation tests check against theory. Magnitudes come from the seed
paper, SPEC or a cited measurement; *(estimate)* marks a project choice where no measurement was found,
with its reasoning. Full citations: ``docs/twin.md``.

Effects by where they act:

- the gel (:class:`GelVariation`): every cast sample of a batch (cylinder, block, inclusion) deviates from
  the batch; stiffness and scatterer density fluctuate smoothly inside a block; attenuation rises with
  gelatin concentration and differs between batches;
- the block (``finite_blocks``): side walls, bottom and the probe face bound the wave;
- the push (:class:`PushVariation`): shot-to-shot output, coupling at each probe position, air bubbles
  under the push aperture, transducer heating over a burst;
- the echoes (:class:`EchoVariation`): electronic SNR, reverberation clutter near the face, probe
  micro-motion while the robot holds the probe, occasional decorrelated frames.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from shearlab.protocols.strict_model import StrictModel


class GelVariation(StrictModel):
    """How a cast gel differs from its batch's nominal values."""

    # Each cast sample of a batch (an indentation cylinder, a block, an inclusion) has its own modulus,
    # E_sample = E_batch (1 + e), e ~ N(0, cv). Bagley, Wolf & Christianson (doi:10.1007/BF01332607):
    # lubricated compression curves of 10 % gelatin cylinders agree within +/-7 %; read as a 2-sigma
    # envelope (estimate), 3.5 %. This is why the paper indents 8 cylinders per concentration.
    sample_modulus_cv: float = Field(default=0.035, ge=0, le=0.3)
    # Smooth stiffness fluctuation inside a block from uneven cooling (modulus CV and correlation length).
    # Robot-held SWS repeats to 0.4 % at one spot (Dundee phantom study) while operators at different
    # spots spread 0.9-5.4 % (Alrashed & Alfuraih 2021, PMC7758105): a few per cent of modulus across
    # a phantom. No correlation length is published; cm-scale thermal gradients in a 100 mm block
    # cooling for hours suggest 10-30 mm (estimate).
    stiffness_cv: float = Field(default=0.03, ge=0, le=0.3)
    stiffness_correlation_mm: float = Field(default=15.0, gt=0)
    # Scatterer density (echo power) fluctuation from graphite settling and clumping: +/-1-2 dB of
    # backscatter over 5-20 mm (estimate from Stokes settling of 2.5-10 um graphite in the sol before
    # it gels; no measurement found). CV 0.3 of power is about +/-1.2 dB.
    scatterer_density_cv: float = Field(default=0.3, ge=0, le=2.0)
    scatterer_correlation_mm: float = Field(default=10.0, gt=0)
    # One-way attenuation at 10 % gelatin, dB/cm/MHz (SPEC §4: ~0.5). Attenuation rises with gelatin
    # concentration: Badawe, Raad & Khraiche 2024 (PMC10917893) measured 67 % more at their highest
    # concentration; mapped onto our 5-17.5 % span (estimate) that is 0.39 at 5 % to 0.66 at 17.5 %.
    attenuation_db_cm_mhz_at_10pct: float = Field(default=0.5, ge=0)
    attenuation_rise_over_range: float = Field(default=0.67, ge=0)
    # Batch-to-batch attenuation spread (1 sigma). Seven labs measuring the same samples agreed to
    # about 20 % (Madsen et al. 1986, J Ultrasound Med 5:569): a batch's own spread below what a lab
    # can resolve, 10 % (estimate).
    attenuation_batch_cv: float = Field(default=0.10, ge=0, le=0.5)


class PushVariation(StrictModel):
    """How much force a push actually delivers."""

    # Shot-to-shot output: repeated hydrophone measurements of focal pressure repeat within 2 % CV,
    # measurement noise included (Martin & Treeby 2019, JASA 145:1270); intensity goes as pressure
    # squared, so 1 % of pressure is 2 % of force.
    shot_intensity_cv: float = Field(default=0.02, ge=0, le=0.5)
    # Coupling through the gel layer at each probe position: impedance-matched, so transmission is near
    # 1; 5 % CV of force for layer thickness and surface finish (estimate).
    coupling_intensity_cv: float = Field(default=0.05, ge=0, le=1.0)
    # An air bubble under the push aperture uncouples one or two of its 11 elements: pressure x 10/11
    # or 9/11, force x 0.83 or 0.67, at 1-2 % of positions (estimate; a robot lowers the probe the same
    # way every time).
    bubble_probability: float = Field(default=0.02, ge=0, le=1)
    # Transducer heating over a burst: the face warms by each push and cools with a time constant of
    # minutes; PZT output falls ~0.2 %/K (estimate: no output-vs-temperature figure for imaging arrays
    # found; IEC 60601-2-37 caps the face at +6 K in a phantom, and the campaign's push duty is < 1 %).
    heating_k_per_push: float = Field(default=0.3, ge=0)
    heating_time_constant_s: float = Field(default=120.0, gt=0)
    output_change_per_k: float = Field(default=-0.002, le=0, ge=-0.05)
    # The face cools between pushes for the campaign's pace, not for the twin's wall-clock time, so the
    # same campaign gives the same data on any machine (ours): ~1 s between the pushes of a position,
    # ~20 s between positions (a move and a contact).
    push_interval_s: float = Field(default=1.0, gt=0)
    position_interval_s: float = Field(default=20.0, gt=0)


class EchoVariation(StrictModel):
    """What the tracking echoes go through besides the shear wave."""

    # Reverberation between the probe face and the gel surface, locked to the probe: clutter-to-signal
    # ratio at the face and its decay length. Reverberation clutter falls off exponentially with a mean
    # depth of 5 mm (Byram & Shu 2016, J Med Imaging 3:046005); -10 dB at the face for direct contact
    # without tissue layers (estimate, -5 to -15 dB).
    clutter_db_at_face: float = -10.0
    clutter_decay_mm: float = Field(default=5.0, gt=0)
    # Probe micro-motion while the robot holds the probe: a slow drift and a servo dither. No vibration
    # spectrum of a stationary UR3 with a probe was found: drift up to 0.1 mm/s and a 10-20 Hz dither of
    # 0.2-2 um (estimate); UR3 repeatability is +/-0.1 mm, force-loop bandwidths of UR-based ultrasound
    # robots are ~17 Hz (Mathiassen et al. 2016, Front Robot AI 3:1).
    drift_um_s_sigma: float = Field(default=50.0, ge=0)
    dither_um: tuple[float, float] = (0.2, 2.0)
    dither_hz: tuple[float, float] = (10.0, 20.0)
    # Decorrelated frames (a bubble passing, a pulser glitch): ARFI succeeds in 99.5 % of phantom
    # measurements (Hollerieth et al. 2018, Ultrasonography 37:140); a failing shot loses 1-3 frames to
    # correlation 0.3-0.7 (estimate).
    dropout_probability: float = Field(default=0.005, ge=0, le=1)
    dropout_frames: tuple[int, int] = (1, 3)
    dropout_correlation: tuple[float, float] = (0.3, 0.7)

    @model_validator(mode="after")
    def _ranges(self) -> EchoVariation:
        for name in ("dither_um", "dither_hz", "dropout_frames", "dropout_correlation"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range 0 <= low <= high, got {(lo, hi)}")
        if self.dropout_correlation[1] > 1:
            raise ValueError("dropout_correlation must lie within [0, 1]")
        return self


class Realism(StrictModel):
    """Every effect of the twin's lab; ``enabled = false`` switches them all off."""

    enabled: bool = True
    finite_blocks: bool = True
    gel: GelVariation = GelVariation()
    push: PushVariation = PushVariation()
    echo: EchoVariation = EchoVariation()

    @classmethod
    def ideal(cls) -> Realism:
        """The first twin: homogeneous unbounded gels at their batch values, every shot the same."""
        return cls(enabled=False, finite_blocks=False)


__all__ = ["EchoVariation", "GelVariation", "PushVariation", "Realism"]
