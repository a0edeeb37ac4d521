"""Live maps while a campaign runs: the page in a real browser, the uncertainty gate, adaptive positions.

The campaigns run in this process on the simulated rig (``rigs/sim.toml``) with a small net's checkpoint;
``shearlab live`` runs as its own process, as a lab runs it, and headless Chromium loads its page.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import chromium_available, headless_page

from shearlab.datasets.reader import SessionReader
from shearlab.orchestrator.flows.acquisition import campaign_flow
from shearlab.orchestrator.live_files import PositionMap, PushMap, read_position_maps, write_position_map
from shearlab.orchestrator.live_maps import LatestModel, LiveMapping
from shearlab.orchestrator.live_page import SessionFolder
from shearlab.protocols.adaptive import AdaptivePicker, StripObservation
from shearlab.protocols.plans import load_campaign_plan
from shearlab.protocols.positions import probe_positions_mm
from shearlab.training.checkpoint import save_checkpoint
from shearlab.training.config import TrainConfig
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.synthetic import synthetic_record, synthetic_session_info

SIM_RIG = Path(__file__).resolve().parents[2] / "rigs" / "sim.toml"
# The page's promise (issue 16): each new position's map within this many seconds of its last push.
LIVE_LATENCY_S = 10.0


def _checkpoint(folder: Path, name: str = "net.pt") -> Path:
    """A small net with a sigma head (untrained: the maps' values do not matter here, their timing does)."""
    torch.manual_seed(0)
    model = DenseNet3d.from_config(model_config_for_window(9, init_channels=4, growth_rate=4, sigma_head=True))
    return save_checkpoint(folder / "models" / name, model=model, train_config=TrainConfig(), epochs_done=0)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_position_names_the_checkpoints_that_mapped_its_pushes(tmp_path: Path) -> None:
    first = _checkpoint(tmp_path)
    mapping = LiveMapping(LatestModel(first.parent), live_url="http://127.0.0.1:8765")
    info = synthetic_session_info("s-live", concentration_pct=10.0)
    maps = mapping.session(tmp_path / "s.h5", info)
    try:
        record = synthetic_record(info, 0, 1)
        maps.add(record, maps.gate(record.displacement_um, push_index=1, lateral_mm=record.push_lateral_mm))  # type: ignore[arg-type]
        # A newer checkpoint lands in the folder mid-position (training beside the campaign).
        newer = _checkpoint(tmp_path, "net2.pt")
        os.utime(newer, (first.stat().st_mtime + 10, first.stat().st_mtime + 10))
        record = synthetic_record(info, 0, 2)
        maps.add(record, maps.gate(record.displacement_um, push_index=2, lateral_mm=record.push_lateral_mm))  # type: ignore[arg-type]
        maps.position_done(0, (0.0, 0.0))
        published = maps.position_map(0)
    finally:
        mapping.close()
    assert published is not None and published.checkpoint == "net.pt, net2.pt"
    assert read_position_maps(tmp_path / "s.h5")[0].checkpoint == "net.pt, net2.pt"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"shearlab live exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


@pytest.mark.slow
@pytest.mark.skipif(not chromium_available(), reason="needs Chromium")
def test_the_live_page_shows_each_new_position_within_seconds_of_its_last_push(
        campaign_plan: Callable[..., Path], tmp_path: Path, prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    checkpoint = _checkpoint(tmp_path)
    # Without the uncertainty gate no push waits for its map: every map is made beside the acquisition.
    plan = campaign_plan(tmp_path, positions=3, pushes=(-8.0, 8.0), name="live", extra=(f'checkpoint = "{checkpoint}"',),
                         qc=("uncertainty_gate = false",))
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "shearlab.orchestrator.cli", "live", str(sessions), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[tuple[str, int], float] = {}
    stop = threading.Event()
    try:
        _wait_for(f"http://127.0.0.1:{port}/", server)
        with headless_page() as page:
            page.navigate(f"http://127.0.0.1:{port}/")

            def watch() -> None:
                # What the reader sees: a map image that has loaded, by session and position.
                script = ("Array.from(document.querySelectorAll('img.map')).filter(i => i.complete && i.naturalWidth > 0)"
                          ".map(i => [i.dataset.session, Number(i.dataset.position)])")
                while not stop.is_set():
                    for session_id, position in page.evaluate(script) or []:
                        seen.setdefault((session_id, position), time.time())
                    time.sleep(0.2)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            summary = campaign_flow(rig=SIM_RIG, plan=plan)
            deadline = time.monotonic() + 2 * LIVE_LATENCY_S
            while len(seen) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            watcher.join(timeout=10)
            text = page.evaluate("document.body.innerText")
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=20)
    assert summary.written == 6 and summary.failed == 0
    maps = read_position_maps(Path(summary.sessions[0]))
    assert sorted(maps) == [0, 1, 2]
    latency_s = {k: seen[("live_block_10p0", k)] - datetime.fromisoformat(m.last_push_at).timestamp()
                 for k, m in maps.items() if ("live_block_10p0", k) in seen}
    assert sorted(latency_s) == [0, 1, 2], f"the page showed {sorted(seen)}"
    assert max(latency_s.values()) <= LIVE_LATENCY_S, latency_s
    # The page also shows each push's QC and contact force, and the figures of its map.
    assert "contact force (N)" in text and "ok" in text and "%" in text
    assert all(p.roi_sigma is not None and p.median_kpa is not None for m in maps.values() for p in m.pushes)
    # One artifact per position in the Prefect UI: the table of pushes and the map, served by the live page.
    keys = [f"live-live-block-10p0-p00{k}" for k in range(3)]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert sorted(a.key for a in artifacts) == keys
    assert all("| push |" in str(a.data) and "/maps/live_block_10p0/" in str(a.data) for a in artifacts)


@pytest.mark.slow
def test_a_sequence_whose_map_is_too_uncertain_is_reacquired_and_recorded(
        campaign_plan: Callable[..., Path], tmp_path: Path, prefect_harness: None) -> None:
    checkpoint = _checkpoint(tmp_path)
    # The untrained head says 10 % everywhere: a 5 % limit fails every map, a 25 % one none.
    strict = campaign_plan(tmp_path / "strict", pushes=(0.0,), max_attempts=2, name="strict",
                           extra=(f'checkpoint = "{checkpoint}"',), qc=("max_roi_sigma = 0.05",))
    summary = campaign_flow(rig=SIM_RIG, plan=strict)
    assert summary.failed == 1 and summary.reacquired == 1 and summary.failures_by_check == {"uncertain": 1}
    with SessionReader(summary.sessions[0]) as reader:
        (ref,) = reader.sequences()
        record = reader.read_sequence(ref.key)
    assert record.failed and record.attempt == 2
    assert record.failure_reason.startswith("map too uncertain: median sigma 10.0 % of the estimate in the ROI, above 5 %")
    assert record.qc.figures["roi_sigma"] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.slow
def test_adaptive_positions_differ_from_random_and_replay_from_the_seed(
        campaign_plan: Callable[..., Path], tmp_path: Path, prefect_harness: None) -> None:
    checkpoint = _checkpoint(tmp_path)
    path = campaign_plan(tmp_path, positions=3, pushes=(0.0,), name="adaptive",
                         extra=(f'checkpoint = "{checkpoint}"', 'strategy = "adaptive"'))
    summary = campaign_flow(rig=SIM_RIG, plan=path)
    maps = read_position_maps(Path(summary.sessions[0]))
    picked = np.array([(maps[k].x_mm, maps[k].y_mm) for k in sorted(maps)])
    plan = load_campaign_plan(path)
    block = plan.blocks[0]
    random = probe_positions_mm(block, 3, edge_margin_mm=plan.edge_margin_mm, seed=plan.seed)
    # Before any map the first pick is the random draw's first position; after it, the model's sigma decides.
    np.testing.assert_allclose(picked[0], random[0])
    assert np.linalg.norm(picked[1:] - random[1:], axis=1).min() > 1.0
    # The same seed and the same maps give the same picks: a resumed campaign replays them.
    replay = AdaptivePicker(block, plan.edge_margin_mm, plan.seed, plan.adaptive, tuple(maps[0].strip_offsets_mm))
    for k in sorted(maps):
        assert replay.next_position() == pytest.approx(tuple(picked[k]))
        sigma = tuple(np.nan if v is None else v for v in maps[k].strip_sigma)
        replay.observe(StripObservation(tuple(picked[k]), tuple(maps[k].strip_offsets_mm), sigma))


def test_the_live_page_state_follows_a_session_and_its_maps(make_session: Callable[..., Path], tmp_path: Path) -> None:
    path = make_session("block-a", positions=range(2), pushes=(2, 4))
    folder = SessionFolder(path.parent)
    (session,) = folder.state()["sessions"]
    assert [p["position"] for p in session["positions"]] == [0, 1] and session["sequences"] == 4
    push = session["positions"][0]["pushes"][0]
    assert push["qc_passed"] and push["force_n"] == pytest.approx(0.2, abs=0.02)
    assert session["positions"][0]["map"] is None
    write_position_map(path, PositionMap(
        session_id="block-a", position=1, x_mm=1.0, y_mm=2.0, pushes=[PushMap(push=2, lateral_mm=-8.0, median_kpa=50.0,
                                                                             median_sigma_kpa=4.0, roi_sigma=0.08, qc_passed=True)],
        strip_offsets_mm=[0.0], strip_sigma=[0.08], checkpoint="net.pt", last_push_at="2026-11-25T10:01:04+00:00",
        mapped_at="2026-11-25T10:01:06+00:00"), b"\x89PNG")
    (session,) = folder.state()["sessions"]
    assert session["positions"][1]["map"]["url"].startswith("maps/block-a/1.png?v=")
    assert folder.session_path("block-a") == path


def test_live_needs_an_existing_folder(shearlab_cli: Callable[..., object], tmp_path: Path) -> None:
    result = shearlab_cli("live", tmp_path / "nowhere")
    assert result.code == 5 and "no such folder" in result.err  # type: ignore[attr-defined]
