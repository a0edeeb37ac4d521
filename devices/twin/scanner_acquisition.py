"""What the twin's scanner sees: the phantom under the probe at the robot's present pose.

The scanner bridge server calls ``TwinScannerBackend.acquire`` for every FIRE. It builds the image
plane through the block under the probe, simulates the push's shear wave and the ultrasound frames,
and refuses a push without acoustic contact (the real system would heat an uncoupled lens).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from shearlab.devices.interfaces import ScanResult
from shearlab.devices.scanner.bridge_wire import ErrorCode, ScanRefused
from shearlab.devices.twin.physics.acquisition import acquire_iq
from shearlab.devices.twin.physics.medium import image_plane_medium
from shearlab.devices.twin.world import World
from shearlab.protocols.sequences import SequenceSpec

# The pre-push reference frame is taken this long before the push starts, s.
REFERENCE_LEAD_S = 1e-4
# Speckle is a property of where the probe is: positions closer than this share a pattern, mm.
SPECKLE_CELL_MM = 0.1


class TwinScannerBackend:
    def __init__(self, world: World, *, robot_pose: Callable[[], np.ndarray], seed: int = 0) -> None:
        self.world = world
        self.robot_pose = robot_pose
        self.seed = seed
        self._shots = 0

    def acquire(self, sequence: SequenceSpec, push_enabled: bool) -> ScanResult:
        pose = np.asarray(self.robot_pose(), dtype=float)
        contact = self.world.probe_contact(pose)
        coupled = contact.coupled and contact.indentation_mm >= self.world.config.probe.coupling_depth_mm
        if push_enabled and not coupled:
            raise ScanRefused(ErrorCode.NO_CONTACT, "push refused: no acoustic contact (probe not pressed onto a phantom)")
        grid = sequence.grid
        self._shots += 1
        rng = np.random.default_rng([self.seed, self._shots])
        x_mm, y_mm = pose[0] * 1e3, pose[1] * 1e3
        if coupled and push_enabled:
            block = contact.block
            medium = image_plane_medium(block, self.world.truths, x_mm, y_mm, grid)
            cell = (round(x_mm / SPECKLE_CELL_MM), round(y_mm / SPECKLE_CELL_MM))
            speckle_seed = zlib.crc32(f"{block.name}/{cell}".encode())
        else:
            medium, speckle_seed = None, 0
        iq, _truth = acquire_iq(medium, sequence, speckle_seed=speckle_seed, snr_db=self.world.config.scanner_snr_db, rng=rng)
        times = np.concatenate([[-REFERENCE_LEAD_S], grid.frame_times_s])
        push = sequence.push
        duration = push.duration_s(sequence.probe) if push_enabled else 0.0
        return ScanResult(
            iq=iq, frame_times_s=times, depth_m=grid.depth_m, lateral_m=grid.lateral_m,
            push_start_s=0.0, push_duration_s=duration, push_voltage_v=push.voltage_v if push_enabled else 0.0,
            pushed=push_enabled, metadata={"coupled": bool(coupled)},
        )
