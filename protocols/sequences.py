"""Push and imaging sequences, the probe, and the image grid they define (SPEC §2).

Axis order everywhere: displacement and IQ volumes are ``(frames, depth, lateral)``; the image grid
is 250 depth rows x 600 lateral columns covering 20 mm x 33 mm; depth is measured from the probe
face, lateral from the probe centre (positive towards element 128).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from shearlab.protocols.strict_model import StrictModel

# Paper's push locations (ours: the paper gives only their order): push 1..7, mm from the probe centre.
PAPER_PUSH_LATERAL_MM: tuple[float, ...] = (-12.0, -8.0, -4.0, 0.0, 4.0, 8.0, 12.0)
# Speed of sound in gelatin (water-like), m/s.
SOUND_SPEED_M_S = 1540.0



class ProbeGeometry(StrictModel):
    """Linear array (SPEC §2): 128 elements, 0.29 mm pitch, 7.5 MHz."""

    n_elements: int = Field(default=128, gt=0)
    pitch_mm: float = Field(default=0.29, gt=0)
    centre_frequency_mhz: float = Field(default=7.5, gt=0)
    fractional_bandwidth: float = Field(default=0.7, gt=0, le=2)

    @property
    def aperture_mm(self) -> float:
        return self.n_elements * self.pitch_mm

    def element_lateral_mm(self) -> np.ndarray:
        """Lateral centre of each element, mm from the array centre, shape (n_elements,)."""
        return (np.arange(self.n_elements) - (self.n_elements - 1) / 2) * self.pitch_mm


class PushSpec(StrictModel):
    """Unfocused-aperture acoustic radiation force push (SPEC §2)."""

    lateral_mm: float = 0.0
    n_elements: int = Field(default=11, gt=0)
    voltage_v: float = Field(default=120.0, gt=0, le=150)
    cycles: int = Field(default=2000, gt=0, le=10000)
    focus_depth_mm: float = Field(default=10.0, gt=0)

    def duration_s(self, probe: ProbeGeometry) -> float:
        return self.cycles / (probe.centre_frequency_mhz * 1e6)


class ImagingSpec(StrictModel):
    """Single-angle plane-wave tracking (SPEC §2).

    ``first_frame_delay_ms`` counts from the *end* of the push (seed paper: imaging "engaged 0.13 ms
    after the push sequence"), so the first frame of a 267 us push comes 0.40 ms after it starts.
    """

    frame_rate_hz: float = Field(default=7000.0, gt=0)
    first_frame_delay_ms: float = Field(default=0.13, ge=0)
    n_frames: int = Field(default=35, gt=0)
    depth_mm: float = Field(default=20.0, gt=0)
    width_mm: float = Field(default=33.0, gt=0)
    n_depth: int = Field(default=250, gt=0)
    n_lateral: int = Field(default=600, gt=0)
    angle_deg: float = 0.0


class SequenceSpec(StrictModel):
    """One push followed by its tracking frames."""

    probe: ProbeGeometry = ProbeGeometry()
    push: PushSpec = PushSpec()
    imaging: ImagingSpec = ImagingSpec()

    @property
    def grid(self) -> ImageGrid:
        return ImageGrid.from_spec(self.imaging, push_duration_s=self.push.duration_s(self.probe))


class RoiSpec(StrictModel):
    """Training ROI: 121 depth rows x 181 lateral columns, centred laterally, from 5 mm depth.

    SPEC quotes 121 x 181 px as "10 x 12 mm"; on the 0.08 x 0.055 mm grid that is 9.7 mm deep and
    10 mm wide. We keep the pixel counts (the network sees pixels) and start at 5 mm depth.
    """

    n_depth: int = 121
    n_lateral: int = 181
    depth_start_mm: float = 5.0


@dataclass(frozen=True)
class ImageGrid:
    """Pixel centres of the beamformed image and the tracking frame times (s from the push start)."""

    depth_m: np.ndarray
    lateral_m: np.ndarray
    frame_times_s: np.ndarray

    @classmethod
    def from_spec(cls, imaging: ImagingSpec, *, push_duration_s: float = 0.0) -> ImageGrid:
        """Pixel centres of ``imaging``, frame times from the start of a push lasting ``push_duration_s``."""
        dz = imaging.depth_mm / imaging.n_depth
        dx = imaging.width_mm / imaging.n_lateral
        depth = (np.arange(imaging.n_depth) + 0.5) * dz * 1e-3
        lateral = (np.arange(imaging.n_lateral) - (imaging.n_lateral - 1) / 2) * dx * 1e-3
        first_s = push_duration_s + imaging.first_frame_delay_ms * 1e-3
        times = first_s + np.arange(imaging.n_frames) / imaging.frame_rate_hz
        return cls(depth_m=depth, lateral_m=lateral, frame_times_s=times)

    @property
    def dz_m(self) -> float:
        return float(self.depth_m[1] - self.depth_m[0])

    @property
    def dx_m(self) -> float:
        return float(self.lateral_m[1] - self.lateral_m[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(frames, depth, lateral)``."""
        return (self.frame_times_s.size, self.depth_m.size, self.lateral_m.size)

    def roi_slices(self, roi: RoiSpec = RoiSpec()) -> tuple[slice, slice]:
        """``(depth_slice, lateral_slice)`` of the training ROI."""
        row0 = int(np.searchsorted(self.depth_m, roi.depth_start_mm * 1e-3))
        col0 = (self.lateral_m.size - roi.n_lateral) // 2
        return slice(row0, row0 + roi.n_depth), slice(col0, col0 + roi.n_lateral)


def paper_pushes() -> tuple[PushSpec, ...]:
    """The 7 pushes of a block position (push 1..7)."""
    return tuple(PushSpec(lateral_mm=x) for x in PAPER_PUSH_LATERAL_MM)


def inclusion_pushes(n: int = 9, *, probe: ProbeGeometry = ProbeGeometry(), margin_mm: float = 2.0) -> tuple[PushSpec, ...]:
    """``n`` pushes spread evenly across the probe, ``margin_mm`` clear of the aperture's ends."""
    half = probe.aperture_mm / 2 - margin_mm
    return tuple(PushSpec(lateral_mm=float(x)) for x in np.linspace(-half, half, n))


__all__ = [
    "PAPER_PUSH_LATERAL_MM",
    "SOUND_SPEED_M_S",
    "ImageGrid",
    "ImagingSpec",
    "ProbeGeometry",
    "PushSpec",
    "RoiSpec",
    "SequenceSpec",
    "inclusion_pushes",
    "paper_pushes",
]
