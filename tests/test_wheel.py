"""The wheel a lab installs with pip: built once, installed outside the checkout into a fresh venv that reuses
this venv's dependencies (no download) and cannot import torch, then run as a rig PC would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NO_TORCH = """import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoTorch())
"""


def _run(venv: Path, *args: object, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "shearlab"), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a venv with it installed and no torch)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(work), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = work.glob("shearlab-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # This venv's packages (pip, prefect, h5py...) after the new venv's own: the wheel's shearlab comes first,
    # and this venv's editable shearlab is never activated (its .pth is not read from an added path).
    # torch is made unimportable, as on a rig PC installed without the train extra.
    (site / "no_torch.py").write_text(NO_TORCH)
    (site / "reuse_checkout_venv.pth").write_text(f"{sysconfig.get_paths()['purelib']}\nimport no_torch\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return wheel, venv


def test_the_wheel_ships_rigs_plans_and_worlds_without_the_tests(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("shearlab/__init__.py", "shearlab/py.typed", "shearlab/rigs/twin.toml", "shearlab/rigs/sim.toml",
                    "shearlab/rigs/twin_indentation.toml", "shearlab/plans/blocks.toml", "shearlab/plans/calibration.toml",
                    "shearlab/devices/twin/worlds/default.toml", "shearlab/orchestrator/cli/app.py"):
        assert shipped in names, shipped
    assert not any(n.startswith(("tests/", "shearlab/tests")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("torch" in r and "extra ==" not in r for r in requires), requires
    assert any("torch" in r and 'extra == "train"' in r for r in requires), requires


def test_a_torch_free_install_runs_outside_the_checkout(installed: tuple[Path, Path], tmp_path: Path, twin_factory, rig_file,
                                                         campaign_plan) -> None:  # type: ignore[no-untyped-def]
    _, venv = installed
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    version = _run(venv, "--version", cwd=tmp_path, env=env)
    assert version.returncode == 0 and version.stdout.startswith("shearlab "), version.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import shearlab.protocols.shipped as s; print(s.shipped_folder('rigs'))"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    # The shipped rigs and plans, copied for a lab to edit.
    assert _run(venv, "init", tmp_path / "lab", cwd=tmp_path, env=env).returncode == 0
    twin = twin_factory(speed=10.0)
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(twin.endpoints.model_dump_json())
    rig = rig_file(twin.host, 10.0)
    check = _run(venv, "rig", "check", rig, "--endpoints", endpoints, "--json", cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stderr
    assert [row["device"] for row in json.loads(check.stdout)["devices"]] == ["robot", "hexapod", "probe_ft", "indenter_ft", "scanner"]
    # A tiny campaign on the twin, then its data checked: all without torch.
    plan = campaign_plan(tmp_path, positions=1, pushes=(0.0,), name="wheel")
    acquire = _run(venv, "acquire", rig, plan, "--endpoints", endpoints, "--json", cwd=tmp_path, env=env, timeout=600)
    assert acquire.returncode == 0, acquire.stderr
    summary = json.loads(acquire.stdout)
    assert summary["written"] == 1 and summary["qc_pass_rate"] == 1.0
    check = _run(venv, "dataset", "check", summary["sessions"][0], cwd=tmp_path, env=env)
    assert check.returncode == 0, check.stderr
    # What needs the train extra says so.
    predict = _run(venv, "predict", summary["sessions"][0], "--checkpoint", tmp_path / "none.pt", cwd=tmp_path, env=env)
    assert predict.returncode == 3 and "pip install 'shearlab[train]'" in predict.stderr, predict.stderr
