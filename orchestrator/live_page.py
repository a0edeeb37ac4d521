"""``shearlab live SESSION_DIR``: a local page that follows a campaign's session files as they grow.

At every poll of the page (``/api/state``, once a second) the server opens each session file of the
folder read-only in SWMR mode (``datasets.reader``), so it sees every sequence the campaign has written
and marked complete, with its QC verdict and contact force, while the campaign keeps writing; and it
reads the live maps the campaign publishes beside the sessions (``live_files``). Written rows never
change, so what was read of them is kept. The page shows each session's newest position large (its
map, modulus beside sigma, and a row per push), and every earlier position's map small.
Starlette and uvicorn come with Prefect; the page is one Jinja2 template with a little JavaScript.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from shearlab.datasets.errors import SessionFileError
from shearlab.datasets.reader import SequenceStatus, SessionReader
from shearlab.orchestrator.live_files import map_png, read_position_maps

TEMPLATES = Path(__file__).with_name("templates")
# ``shearlab live``'s address by default (the campaign's artifacts link their images there: settings.live_url).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass
class _Session:
    """What the server has read of one session file: its description and the status of each written sequence."""

    path: Path
    session_id: str = ""
    header: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, tuple[int, int, SequenceStatus]] = field(default_factory=dict)


def _push_row(push: int, key: str, status: SequenceStatus) -> dict[str, Any]:
    force = status.contact_force_n
    return {"push": push, "key": key, "qc_passed": status.qc_passed, "failed": status.failed, "reason": status.qc_reason,
            "attempt": status.attempt, "acquired_at": status.acquired_at,
            "force_n": float(force.mean()) if force.size else None,
            "force_range_n": [float(force.min()), float(force.max())] if force.size else None}


class SessionFolder:
    """The session files of a folder, followed as they grow."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._sessions: dict[Path, _Session] = {}
        self._lock = threading.Lock()

    def _follow(self, path: Path) -> _Session:
        session = self._sessions.setdefault(path, _Session(path))
        with SessionReader(path) as reader:
            info = reader.info
            session.session_id = info.session_id
            session.header = {"session_id": info.session_id, "phantom": info.phantom, "batch_id": info.batch_id,
                              "kind": info.kind, "concentration_pct": info.concentration_pct, "file": path.name}
            for ref in reader.sequences():
                if ref.key not in session.statuses:
                    session.statuses[ref.key] = (ref.position_index, ref.push_index, reader.read_status(ref.key))
        return session

    def state(self) -> dict[str, Any]:
        """Every session's positions, pushes, QC, contact force and published maps, newest first."""
        sessions = []
        with self._lock:
            for path in sorted(self.folder.glob("*.h5")):
                try:
                    session = self._follow(path)
                except (SessionFileError, OSError):
                    continue  # being created, or not a session: the next poll sees it
                sessions.append(self._session_state(session))
        sessions.sort(key=lambda s: s["last_push_at"] or "", reverse=True)
        return {"folder": str(self.folder), "updated_at": datetime.now(UTC).isoformat(), "sessions": sessions}

    def _session_state(self, session: _Session) -> dict[str, Any]:
        maps = read_position_maps(session.path)
        positions: dict[int, list[dict[str, Any]]] = {}
        poses: dict[int, np.ndarray] = {}
        for key, (position, push, status) in session.statuses.items():
            positions.setdefault(position, []).append(_push_row(push, key, status))
            poses.setdefault(position, status.probe_pose)
        rows = []
        for position in sorted(positions):
            pushes = sorted(positions[position], key=lambda p: p["push"])
            found = maps.get(position)
            rows.append({
                "position": position, "x_mm": float(poses[position][0] * 1e3), "y_mm": float(poses[position][1] * 1e3),
                "pushes": pushes, "last_push_at": max(p["acquired_at"] for p in pushes),
                "map": None if found is None else {
                    "url": f"maps/{session.session_id}/{position}.png?v={found.mapped_at}", "mapped_at": found.mapped_at,
                    "checkpoint": found.checkpoint, "pushes": [p.model_dump() for p in found.pushes]},
            })
        return {**session.header, "positions": rows, "sequences": len(session.statuses),
                "failed": sum(1 for _, _, s in session.statuses.values() if s.failed),
                "last_push_at": max((r["last_push_at"] for r in rows), default=None)}

    def session_path(self, session_id: str) -> Path | None:
        with self._lock:
            return next((s.path for s in self._sessions.values() if s.session_id == session_id), None)


def create_app(folder: Path) -> Starlette:
    """The live page of ``folder``: ``/`` (the page), ``/api/state`` (JSON), ``/maps/SESSION/POSITION.png``."""
    sessions = SessionFolder(folder)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    page = environment.get_template("live.html.j2").render(folder=str(Path(folder).resolve()))

    async def index(_: Request) -> Response:
        return HTMLResponse(page)

    def state(_: Request) -> Response:
        return JSONResponse(sessions.state(), headers={"Cache-Control": "no-store"})

    def map_image(request: Request) -> Response:
        path = sessions.session_path(request.path_params["session_id"])
        image = map_png(path, int(request.path_params["position"])) if path is not None else None
        if image is None or not image.exists():
            return Response("no such map", status_code=404)
        return FileResponse(image, media_type="image/png")

    # Sync handlers run in Starlette's thread pool: reading HDF5 never blocks the event loop.
    return Starlette(routes=[Route("/", index), Route("/api/state", state),
                             Route("/maps/{session_id}/{position:int}.png", map_image)])


def serve(folder: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the live page of ``folder`` until interrupted."""
    uvicorn.run(create_app(folder), host=host, port=port, log_level="warning")


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "SessionFolder", "create_app", "serve"]
