"""Signal processing of shear-wave data: Loupas' displacement estimator, sequence quality figures, and
the classical estimators the CNN is compared with (the paper's time of flight, time to peak, the
amplitude shortcut), with the speed-to-modulus relation they share."""

from shearlab.protocols.signal.loupas import default_axial_kernel, loupas_displacement
from shearlab.protocols.signal.modulus import ALPHA_RULES, AlphaRule, fit_alpha, modulus_to_speed_m_s, speed_to_modulus_kpa
from shearlab.protocols.signal.quality import displacement_peak_um, displacement_snr_db, frame_correlation
from shearlab.protocols.signal.time_to_peak import TimeToPeakSettings, group_speed_m_s, ttp_speed_map
from shearlab.protocols.signal.tof import (
    TofResult,
    TofSettings,
    compound_maps,
    smooth_map,
    tof_elasticity_map,
    tof_speed_map,
)

__all__ = [
    "ALPHA_RULES",
    "AlphaRule",
    "TimeToPeakSettings",
    "TofResult",
    "TofSettings",
    "compound_maps",
    "default_axial_kernel",
    "displacement_peak_um",
    "displacement_snr_db",
    "fit_alpha",
    "frame_correlation",
    "group_speed_m_s",
    "loupas_displacement",
    "modulus_to_speed_m_s",
    "smooth_map",
    "speed_to_modulus_kpa",
    "tof_elasticity_map",
    "tof_speed_map",
    "ttp_speed_map",
]
