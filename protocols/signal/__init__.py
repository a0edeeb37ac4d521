"""Signal processing of shear-wave data: Loupas' displacement estimator, sequence quality figures, and
the classical speed estimators the CNN is compared with (the paper's time-of-flight)."""

from shearlab.protocols.signal.loupas import default_axial_kernel, loupas_displacement
from shearlab.protocols.signal.quality import displacement_snr_db, frame_correlation
from shearlab.protocols.signal.tof import (
    TofResult,
    TofSettings,
    compound_maps,
    fit_alpha,
    smooth_map,
    tof_elasticity_map,
    tof_modulus_kpa,
    tof_speed_map,
)

__all__ = [
    "TofResult",
    "TofSettings",
    "compound_maps",
    "default_axial_kernel",
    "displacement_snr_db",
    "fit_alpha",
    "frame_correlation",
    "loupas_displacement",
    "smooth_map",
    "tof_elasticity_map",
    "tof_modulus_kpa",
    "tof_speed_map",
]
