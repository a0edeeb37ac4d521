"""The whole twin process through the real drivers: the probe touches a block, the Nano43 feels it,
pressing past the controller's limit ends in a protective stop; `shearlab rig check` reads every device."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shearlab.devices.connect import open_devices
from shearlab.devices.endpoints import Endpoints
from shearlab.devices.errors import DeviceFaultError
from shearlab.devices.twin_client import TwinControl
from shearlab.protocols.rig import load_rig

pytestmark = pytest.mark.slow

# block_10p0 of the default world: centre (55, 200) mm, top at z = 100 mm.
ABOVE_BLOCK = np.array([0.055, 0.200, 0.105, np.pi, 0.0, 0.0])


def test_nano43_reading_rises_on_the_block_and_pressing_too_hard_stops_the_arm(twin_factory, rig_file):
    twin = twin_factory(speed=10.0)
    rig = load_rig(rig_file(twin.host, 10.0))
    with open_devices(rig, twin.endpoints, ("robot", "probe_ft")) as devices, \
            TwinControl(twin.endpoints.control) as control:
        robot, sensor = devices.robot, devices.probe_ft
        robot.move_linear(ABOVE_BLOCK, speed_m_s=0.05, accel_m_s2=0.5)
        sensor.bias()
        readings = []
        for depth_mm in (-4.9, 0.05, 0.15, 0.30):
            pose = ABOVE_BLOCK.copy()
            pose[2] = 0.100 - depth_mm * 1e-3
            robot.move_linear(pose, speed_m_s=0.002, accel_m_s2=0.5)
            readings.append(float(np.mean([sensor.read().force_n[2] for _ in range(8)])))
        # In air, then a force that grows with the indentation (flat punch: linear in depth).
        assert abs(readings[0]) < 0.02
        assert 0 < readings[1] < readings[2] < readings[3]
        assert readings[3] / readings[2] == pytest.approx(2.0, rel=0.15)
        twin_force = control.state().probe_force_n
        assert readings[3] == pytest.approx(twin_force, abs=0.02)

        # The world's protective-stop threshold is 5 N: 10 mm into 10 % gel is far past it.
        deep = ABOVE_BLOCK.copy()
        deep[2] = 0.090
        with pytest.raises(DeviceFaultError, match="protective stop"):
            robot.move_linear(deep, speed_m_s=0.002, accel_m_s2=0.5)
        state = control.state()
        assert state.protective_stopped
        assert 5.0 <= state.probe_force_n < 5.5


def test_rig_check_prints_one_row_per_device(tmp_path, loopback_host):
    rig = tmp_path / "rig.toml"
    rig.write_text((Path(__file__).parents[2] / "rigs" / "twin.toml").read_text()
                   .replace('host = "127.0.0.5"', f'host = "{loopback_host()}"'))
    result = subprocess.run([sys.executable, "-m", "shearlab.orchestrator.cli", "rig", "check", str(rig)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for device in ("robot", "hexapod", "probe_ft", "indenter_ft", "scanner"):
        assert device in result.stdout


def test_a_bad_rig_file_names_the_file_and_the_field(tmp_path):
    rig = tmp_path / "bad.toml"
    rig.write_text('name = "x"\n[robot.limits]\nmax_contact_force_n = -1\n')
    result = subprocess.run([sys.executable, "-m", "shearlab.orchestrator.cli", "rig", "check", str(rig)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3  # a configuration error (README, exit codes)
    assert str(rig) in result.stderr and "robot.limits.max_contact_force_n" in result.stderr
    assert "Traceback" not in result.stderr


def test_twin_serve_prints_its_endpoints(tmp_path, loopback_host):
    endpoints = tmp_path / "endpoints.json"
    host = loopback_host()
    proc = subprocess.Popen([sys.executable, "-m", "shearlab.orchestrator.cli", "twin", "serve", "--host", host,
                             "--endpoints", str(endpoints)], stdout=subprocess.PIPE, text=True)
    try:
        printed = Endpoints.model_validate_json(proc.stdout.readline())
        assert printed == Endpoints.model_validate_json(endpoints.read_text())
        # One naming: the endpoints' fields are the rig's device names.
        assert set(json.loads(printed.model_dump_json())) == {"robot", "hexapod", "probe_ft", "indenter_ft", "scanner", "control", "speed",
                                                              "token"}
        assert printed.token is None  # a loopback twin needs none
        assert printed.robot.host == host and printed.probe_ft.serial.startswith("/dev/pts/")
    finally:
        proc.terminate()
        proc.wait(10)
