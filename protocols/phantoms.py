"""Gelatin phantoms: the concentration catalogue, cast batches and phantom geometry.

Nominal values are the lab's knowledge (what a concentration is expected to give). A *cast batch*
deviates from nominal by a few percent; its true values are drawn once from the batch id and stay
inside the digital twin. Labels for training must come from the indentation calibration flow, never
from this table.

Sources: SPEC §2 (modulus table), §4 (dynamic modulus, viscosity). Values marked *(ours)* are
project choices where the paper gives none.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from shearlab.protocols.fields import ConcentrationPct, SafeName
from shearlab.protocols.strict_model import StrictModel

# Gelatin : water weight ratio (percent) -> quasi-static Young's modulus by indentation, kPa.
NOMINAL_E_KPA: dict[float, float] = {
    5.0: 17.42,
    7.5: 37.55,
    10.0: 54.0,
    12.5: 72.64,
    15.0: 97.21,
    17.5: 126.05,
}
CONCENTRATIONS_PCT: tuple[float, ...] = tuple(NOMINAL_E_KPA)

# Kelvin-Voigt shear viscosity, Pa s *(ours)*: within the 0.1-1 Pa s reported for gelatin, rising
# with concentration as the gel network densifies.
NOMINAL_ETA_PA_S: dict[float, float] = {5.0: 0.30, 7.5: 0.40, 10.0: 0.50, 12.5: 0.60, 15.0: 0.70, 17.5: 0.80}

DENSITY_KG_M3 = 1000.0  # gelatin gels are within 2-5 % of water; rho = 1000 per the ToF formula
POISSON_RATIO = 0.5  # incompressible
# Ratio of quasi-static (indentation) to dynamic (shear-wave) modulus, E_static = 3 alpha mu_dyn.
# The paper fits alpha = 0.75 for its ToF calibration; the twin's true value is "near 0.75" and the
# pipeline must fit it, never assume it.
ALPHA_TRUE = 0.76
# Batch-to-batch relative spread of the modulus (1 sigma) *(ours)*: "a few percent".
BATCH_E_SPREAD = 0.04
BATCH_ETA_SPREAD = 0.10


def nominal_e_kpa(concentration_pct: float) -> float:
    """Nominal indentation modulus of a catalogue concentration, kPa."""
    try:
        return NOMINAL_E_KPA[float(concentration_pct)]
    except KeyError:
        raise ValueError(
            f"gelatin concentration {concentration_pct} % is not in the catalogue "
            f"{sorted(NOMINAL_E_KPA)}"
        ) from None


@dataclass(frozen=True)
class GelTruth:
    """True mechanical properties of one cast batch (SI units). Lives inside the twin only."""

    batch_id: str
    concentration_pct: float
    e_static_pa: float
    eta_pa_s: float
    density_kg_m3: float = DENSITY_KG_M3
    alpha: float = ALPHA_TRUE

    @property
    def mu_dynamic_pa(self) -> float:
        """Shear modulus that the shear wave sees, mu_dyn = E_static / (3 alpha)."""
        return self.e_static_pa / (3.0 * self.alpha)

    @property
    def shear_speed_m_s(self) -> float:
        """Low-frequency (elastic) shear speed sqrt(mu_dyn / rho)."""
        return math.sqrt(self.mu_dynamic_pa / self.density_kg_m3)


def name_seed(name: str) -> int:
    """A 64-bit seed drawn from a name: the same name always draws the same random numbers."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def cast_batch(batch_id: str, concentration_pct: float) -> GelTruth:
    """Draw a batch's true properties, reproducibly from its id."""
    # float(): 10 and 10.0 name the same concentration and must draw the same batch.
    rng = np.random.default_rng(name_seed(f"{batch_id}/{float(concentration_pct)}"))
    e = nominal_e_kpa(concentration_pct) * 1e3 * (1.0 + BATCH_E_SPREAD * float(np.clip(rng.standard_normal(), -2.5, 2.5)))
    eta = NOMINAL_ETA_PA_S[float(concentration_pct)] * (1.0 + BATCH_ETA_SPREAD * float(np.clip(rng.standard_normal(), -2.5, 2.5)))
    return GelTruth(batch_id=batch_id, concentration_pct=float(concentration_pct), e_static_pa=e, eta_pa_s=eta)



class Cylinder(StrictModel):
    """Indentation cylinder (SPEC: r = 10 mm, l0 = 40 mm, 8 per concentration)."""

    batch_id: str
    concentration_pct: float
    index: int = Field(ge=0)
    radius_mm: float = Field(default=10.0, gt=0)
    length_mm: float = Field(default=40.0, gt=0)


class Inclusion(StrictModel):
    """An inclusion in the image plane; ``shape`` "circle" uses ``radius_mm``; "irregular" a
    smooth star-shaped outline with radius ``radius_mm * (1 + sum a_k cos(k theta + phi_k))``."""

    concentration_pct: ConcentrationPct = 15.0
    batch_id: SafeName
    shape: str = Field(default="circle", pattern="^(circle|irregular)$")
    # Inside a block: at most half its 100 mm side from the centre, below its top.
    centre_lateral_mm: float = Field(default=0.0, ge=-50, le=50)
    centre_depth_mm: float = Field(default=10.0, gt=0, le=100)
    radius_mm: float = Field(default=5.0, gt=0, le=50)
    # (amplitude, phase rad) per harmonic; an amplitude of 1 or more turns the outline inside out.
    harmonics: tuple[tuple[Annotated[float, Field(gt=-1, lt=1)], float], ...] = ()


class Block(StrictModel):
    """A gelatin block on the table, ~100 x 100 x 100 mm, optionally with inclusions.

    ``x_mm``, ``y_mm`` locate the block's centre in the robot base frame; the probe's lateral
    (array) axis is the base x axis. Inclusions are cylinders along y, so every probe position along
    y sees the same cross-section, offset laterally by the probe's x relative to the block centre.
    """

    name: str
    batch_id: str
    concentration_pct: float
    x_mm: float = 0.0
    y_mm: float = 0.0
    size_mm: tuple[float, float, float] = (100.0, 100.0, 100.0)
    inclusions: tuple[Inclusion, ...] = ()

    def top_z_mm(self, table_z_mm: float = 0.0) -> float:
        return table_z_mm + self.size_mm[2]

    def covers(self, x_mm: float, y_mm: float) -> bool:
        return abs(x_mm - self.x_mm) <= self.size_mm[0] / 2 and abs(y_mm - self.y_mm) <= self.size_mm[1] / 2


def inclusion_mask(
    inclusion: Inclusion, lateral_mm: np.ndarray, depth_mm: np.ndarray
) -> np.ndarray:
    """Boolean mask of ``inclusion`` on a grid; ``lateral_mm`` and ``depth_mm`` broadcast together."""
    dx = lateral_mm - inclusion.centre_lateral_mm
    dz = depth_mm - inclusion.centre_depth_mm
    r = np.hypot(dx, dz)
    if inclusion.shape == "circle":
        return r <= inclusion.radius_mm
    theta = np.arctan2(dz, dx)
    outline = np.ones_like(theta)
    for k, (amp, phase) in enumerate(inclusion.harmonics, start=2):
        outline = outline + amp * np.cos(k * theta + phase)
    return r <= inclusion.radius_mm * outline
