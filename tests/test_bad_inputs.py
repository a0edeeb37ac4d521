"""A careful user's and a hostile input's tour of the command line: every command, every safety-relevant
field of the rig and plan files, every file kind, each given something wrong.

Each case must end in a clear error that names the file, field or device and what is wrong, a non-zero
exit code, no traceback, and no file changed (an output that would overwrite an input is refused before
anything is written).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

ROOT = Path(__file__).resolve().parents[1]


USAGE, CONFIG, DATA = 2, 3, 5


@dataclass(frozen=True)
class Case:
    """``args`` of the ``shearlab`` command (paths relative to the case's folder), its exit code (the CLI's
    ``errors.ExitCode``) and what its error must say."""

    name: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``dotted`` (``a.b.c``) set to ``value`` (``...`` removes it)."""
    out = tomllib.loads(tomli_w.dumps(data))
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return out


RIG = tomllib.loads((ROOT / "rigs" / "twin.toml").read_text())
INDENTATION_RIG = tomllib.loads((ROOT / "rigs" / "twin_indentation.toml").read_text())
CAMPAIGN = {"name": "bad", "n_positions": 1, "push_lateral_mm": [0.0], "out_dir": "sessions", "calibration_dir": "cal",
            "blocks": [{"name": "block_10p0", "batch_id": "B1-10.0", "concentration_pct": 10.0, "x_mm": 55.0, "y_mm": 200.0}]}
CALIBRATION = {"name": "bad", "out_dir": "cal", "batches": [{"batch_id": "B1-10.0", "concentration_pct": 10.0, "cylinders": 2}]}
BLOCK = "blocks.0"

# (case name, rig field, value, what the error names)
RIG_FIELDS: list[tuple[str, str, Any, str]] = [
    ("contact limit infinite", "robot.limits.max_contact_force_n", float("inf"), "robot.limits.max_contact_force_n"),
    ("contact limit NaN", "robot.limits.max_contact_force_n", float("nan"), "robot.limits.max_contact_force_n"),
    ("contact limit 1e12", "robot.limits.max_contact_force_n", 1e12, "less than or equal to 36"),
    ("contact limit negative", "robot.limits.max_contact_force_n", -1.0, "robot.limits.max_contact_force_n"),
    ("robot speed 5 m/s", "robot.limits.max_speed_m_s", 5.0, "robot.limits.max_speed_m_s"),
    ("robot acceleration zero", "robot.limits.max_accel_m_s2", 0.0, "robot.limits.max_accel_m_s2"),
    ("watchdog 0.01 Hz", "robot.limits.watchdog_hz", 0.01, "robot.limits.watchdog_hz"),
    ("watchdog infinite", "robot.limits.watchdog_hz", float("inf"), "robot.limits.watchdog_hz"),
    ("workspace of NaNs", "robot.limits.workspace.min_m", [float("nan")] * 3, "robot.limits.workspace.min_m"),
    ("workspace 1e12", "robot.limits.workspace.max_m", [1e12, 0.4, 0.5], "robot.limits.workspace.max_m"),
    ("workspace inside out", "robot.limits.workspace.min_m", [0.45, -0.4, 0.0], "min_m must be below max_m"),
    ("hexapod force 100 N", "hexapod.limits.max_force_n", 100.0, "hexapod.limits.max_force_n"),
    ("hexapod travel negative", "hexapod.limits.max_travel_mm", -5.0, "hexapod.limits.max_travel_mm"),
    ("hexapod velocity infinite", "hexapod.limits.max_velocity_mm_s", float("inf"), "hexapod.limits.max_velocity_mm_s"),
    ("twin on every interface", "twin.host", "0.0.0.0", "not a loopback address"),
    ("twin on the network", "twin.host", "10.0.0.5", "not a loopback address"),
    ("twin speed 1e9", "twin.speed", 1e9, "twin.speed"),
    ("twin speed zero", "twin.speed", 0.0, "twin.speed"),
    ("twin speed a word", "twin.speed", "fast", "twin.speed"),
    ("rig name a path", "name", "../../etc", "name: String should match pattern"),
    ("rig name empty", "name", "", "name:"),
    ("unknown robot driver", "robot.driver", "abb", "robot.driver"),
    ("misspelt limit", "robot.limits.max_contact_force", 1.0, "robot.limits.max_contact_force: Extra inputs"),
    ("hexapod port 70000", "hexapod.port", 70000, "hexapod.port"),
    ("baudrate 7", "probe_ft.baudrate", 7, "probe_ft.baudrate"),
    ("averaging 100", "probe_ft.averaging", 100, "probe_ft.averaging"),
    ("clock twin without a twin", "twin", ..., "needs a [twin] table"),
    ("robot host garbage", "robot.host", "not a host!", "robot.host"),
]
# (case name, campaign plan field, value, what the error names)
CAMPAIGN_FIELDS: list[tuple[str, str, Any, str]] = [
    ("target force above the rig's limit", "contact.target_force_n", 5.0, "max_contact_force_n 1.0 N"),
    ("target force infinite", "contact.target_force_n", float("inf"), "contact.target_force_n"),
    ("target force negative", "contact.target_force_n", -0.2, "contact.target_force_n"),
    ("tolerance above target", "contact.tolerance_n", 0.5, "tolerance_n 0.5 N must be below target_force_n"),
    ("contact speed above the rig's", "contact.max_speed_m_s", 0.2, "robot.limits.max_speed_m_s 0.1"),
    ("approach speed 10 m/s", "contact.approach_speed_m_s", 10.0, "contact.approach_speed_m_s"),
    ("lift 5 m", "contact.lift_clearance_mm", 5000.0, "contact.lift_clearance_mm"),
    ("block outside the workspace", f"{BLOCK}.x_mm", 450.0, "outside the rig's robot.limits.workspace"),
    ("block beyond reach", f"{BLOCK}.x_mm", 1e6, "x_mm"),
    ("block name a path", f"{BLOCK}.name", "../../..", "blocks.0.name"),
    ("block name with a slash", f"{BLOCK}.name", "a/b", "blocks.0.name"),
    ("batch id empty", f"{BLOCK}.batch_id", "", "blocks.0.batch_id"),
    ("concentration negative", f"{BLOCK}.concentration_pct", -5.0, "blocks.0.concentration_pct"),
    ("concentration 150 %", f"{BLOCK}.concentration_pct", 150.0, "blocks.0.concentration_pct"),
    ("no positions", "n_positions", 0, "n_positions"),
    ("a billion positions", "n_positions", 10**9, "n_positions"),
    ("push off the probe", "push_lateral_mm", [40.0], "outside the 37.1 mm aperture"),
    ("edge margin leaves no room", "edge_margin_mm", 60.0, "leaves no room"),
    ("cron in words", "cron", "every day", "cron: Value error, not a valid cron expression"),
    ("cron minute 61", "cron", "61 * * * *", "not a valid cron expression"),
    ("no attempts", "qc.max_attempts", 0, "qc.max_attempts"),
    ("correlation 2", "qc.min_frame_correlation", 2.0, "qc.min_frame_correlation"),
    ("flat block", f"{BLOCK}.size_mm", [0.0, 100.0, 100.0], "blocks.0.size_mm"),
    ("plan name with a space", "name", "a b", "name"),
    ("table height NaN", "table_z_mm", float("nan"), "table_z_mm"),
    ("position beyond reach", f"{BLOCK}.positions_mm", [[600.0, 0.0]], "positions_mm"),
    ("unknown kind", "kind", "cylinder", "kind"),
    ("misspelt field", "n_position", 3, "n_position: Extra inputs"),
    ("negative seed", "seed", -1, "seed"),
]
# (case name, calibration plan field, value, what the error names)
CALIBRATION_FIELDS: list[tuple[str, str, Any, str]] = [
    ("strain range reversed", "indentation.strain_range", [0.07, 0.02], "must run from low to high"),
    ("strain range negative", "indentation.strain_range", [-0.01, 0.05], "indentation.strain_range"),
    ("strain range past the stop", "indentation.strain_range", [0.02, 0.2], "past max_strain"),
    ("stop force 50 N", "indentation.stop_force_n", 50.0, "indentation.stop_force_n"),
    ("stop force above the rig's limit", "indentation.stop_force_n", 3.0, "hexapod.limits.max_force_n 2.5 N"),
    ("plate faster than the rig allows", "indentation.plate_speed_mm_s", 5.0, "hexapod.limits.max_velocity_mm_s 2.0"),
    ("touch at the stop force", "indentation.touch_force_n", 2.0, "touch_force_n 2.0 N must be below stop_force_n"),
    ("strain 1.5", "indentation.max_strain", 1.5, "indentation.max_strain"),
    ("one cylinder", "batches.0.cylinders", 1, "batches.0.cylinders"),
    ("concentration negative", "batches.0.concentration_pct", -10.0, "batches.0.concentration_pct"),
    ("batch id a path", "batches.0.batch_id", "../x", "batches.0.batch_id"),
    ("radius zero", "batches.0.radius_mm", 0.0, "batches.0.radius_mm"),
    ("cron six fields", "cron", "0 0 3 * * *", "five fields"),
    ("sample rate NaN", "indentation.sample_rate_hz", float("nan"), "indentation.sample_rate_hz"),
]


def _fields_get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for key in dotted.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """``_set`` that also walks into lists (``blocks.0.name``)."""
    if not any(part.isdigit() for part in dotted.split(".")):
        return _set(data, dotted, value)
    out = tomllib.loads(tomli_w.dumps(data))
    *parents, last = dotted.split(".")
    node = _fields_get(out, ".".join(parents))
    node[last] = value
    return out


def build_cases(folder: Path, make_session: Callable[..., Path]) -> list[Case]:
    """Write every file the cases use into ``folder`` and return the cases."""
    import torch

    from shearlab.datasets.records import CalibrationFit
    from shearlab.orchestrator.calibration_records import save_record
    from shearlab.training.checkpoint import save_checkpoint
    from shearlab.training.config import TrainConfig
    from shearlab.training.model import DenseNet3d, model_config_for_window

    def write(name: str, data: dict[str, Any]) -> str:
        (folder / name).write_text(tomli_w.dumps(data))
        return name

    rig, indentation_rig = write("rig.toml", RIG), write("indentation_rig.toml", INDENTATION_RIG)
    campaign, calibration = write("campaign.toml", CAMPAIGN), write("calibration.toml", CALIBRATION)
    save_record(folder / "cal", CalibrationFit(calibration_id="cal-B1-10.0-test", batch_id="B1-10.0", concentration_pct=10.0,
                                               e_kpa=54.0, ci95_kpa=(53.0, 55.0), cylinders=8, sample_sd_kpa=1.2, n_points=100, r2=0.99))
    cases = []
    for i, (name, field, value, says) in enumerate(RIG_FIELDS):
        cases.append(Case(f"rig: {name}", ("acquire", write(f"rig_{i}.toml", _set(RIG, field, value)), campaign), CONFIG,
                          (f"rig_{i}.toml", says)))
    for i, (name, field, value, says) in enumerate(CAMPAIGN_FIELDS):
        path = write(f"campaign_{i}.toml", _set_path(CAMPAIGN, field, value))
        cases.append(Case(f"campaign: {name}", ("acquire", rig, path), CONFIG, (path, says)))
    for i, (name, field, value, says) in enumerate(CALIBRATION_FIELDS):
        path = write(f"calibration_{i}.toml", _set_path(CALIBRATION, field, value))
        cases.append(Case(f"calibration: {name}", ("calibrate", indentation_rig, path), CONFIG, (path, says)))

    # Files that are not what they should be.
    (folder / "latin1.toml").write_bytes('name = "Gelatine-Prüfstand"\n'.encode("latin-1"))
    (folder / "broken.toml").write_text("name = [\n")
    (folder / "a folder.toml").mkdir()
    write("no_record.toml", _set(CAMPAIGN, "calibration_dir", "nowhere"))
    (folder / "cal_bad").mkdir()
    (folder / "cal_bad" / "B1-10.0.json").write_text("{not json")
    write("bad_record.toml", _set(CAMPAIGN, "calibration_dir", "cal_bad"))
    write("twin_rig_check.toml", _set(RIG, "twin.host", "0.0.0.0"))
    write("bad_cron_blocks.toml", _set(CAMPAIGN, "cron", "0 25 * * *"))
    cases += [
        Case("rig file not UTF-8", ("acquire", "latin1.toml", campaign), CONFIG, ("latin1.toml", "not UTF-8 text")),
        Case("plan file not UTF-8", ("acquire", rig, "latin1.toml"), CONFIG, ("latin1.toml", "not UTF-8 text")),
        Case("rig file not TOML", ("calibrate", "broken.toml", calibration), CONFIG, ("broken.toml", "not valid TOML")),
        Case("plan file not TOML", ("calibrate", indentation_rig, "broken.toml"), CONFIG, ("broken.toml", "not valid TOML")),
        Case("rig file missing", ("acquire", "missing.toml", campaign), CONFIG, ("missing.toml", "file not found")),
        Case("rig file a folder", ("acquire", "a folder.toml", campaign), CONFIG, ("a folder.toml", "cannot be read")),
        Case("no calibration record", ("acquire", rig, "no_record.toml"), CONFIG, ("B1-10.0.json", "run `shearlab calibrate`")),
        Case("calibration record damaged", ("acquire", rig, "bad_record.toml"), CONFIG, ("B1-10.0.json", "not a valid calibration record")),
        Case("rig check of a networked twin", ("rig", "check", "twin_rig_check.toml"), CONFIG, ("twin_rig_check.toml", "not a loopback")),
        Case("serve a plan with a bad cron", ("serve", "--rig", rig, "--indentation-rig", indentation_rig, "--calibration", calibration,
                                              "--blocks", "bad_cron_blocks.toml", "--inclusions", campaign), CONFIG,
             ("bad_cron_blocks.toml", "cron")),
    ]

    # Session files.
    session = make_session("s1", positions=[0], pushes=[1, 2], folder=folder).name
    (folder / "text.h5").write_text("position 3 looked odd\n")
    (folder / "truncated.h5").write_bytes((folder / session).read_bytes()[:5000])
    import h5py

    with h5py.File(folder / "foreign.h5", "w") as fh:
        fh["data"] = [1, 2, 3]
    (folder / "existing.uff").write_bytes(b"an earlier export")
    (folder / "empty").mkdir()
    cases += [
        Case("info of a missing session", ("dataset", "info", "nope.h5"), DATA, ("nope.h5", "file not found")),
        Case("check of a text file", ("dataset", "check", "text.h5"), DATA, ("text.h5", "not an HDF5 file")),
        Case("check of a truncated session", ("dataset", "check", "truncated.h5"), DATA, ("truncated.h5", "truncated or damaged")),
        Case("info of a foreign HDF5 file", ("dataset", "info", "foreign.h5"), DATA, ("foreign.h5", "not a shearlab session")),
        Case("check of a folder without sessions", ("dataset", "check", "empty"), DATA, ("empty", "no session files")),
        Case("export onto its own session", ("dataset", "export-uff", session, session), USAGE, (session, "is an input of this command")),
        Case("export onto the session by another path", ("dataset", "export-uff", session, f"./empty/../{session}"), USAGE,
             ("is an input of this command",)),
        Case("export over an earlier export", ("dataset", "export-uff", session, "existing.uff"), USAGE, ("existing.uff", "--force")),
        Case("export into a folder", ("dataset", "export-uff", session, "empty"), USAGE, ("empty", "is a folder")),
        Case("export of a text file", ("dataset", "export-uff", "text.h5", "new.uff"), DATA, ("text.h5", "not an HDF5 file")),
    ]

    # Checkpoints and splits.
    model = DenseNet3d.from_config(model_config_for_window(5, init_channels=2, growth_rate=2))
    good = save_checkpoint(folder / "good.pt", model=model, train_config=TrainConfig(epochs=1), epochs_done=1)
    (folder / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    # Seeded: about one in six random files trips torch's unpickler with an IndexError instead of its refusal
    # (a different clear message), so fresh random bytes made this case fail now and then.
    (folder / "random.pt").write_bytes(random.Random(0).randbytes(4096))
    (folder / "empty.pt").write_bytes(b"")
    torch.save({"format": "someone-elses/1", "weights": torch.zeros(3)}, folder / "foreign.pt")
    payload = torch.load(good, weights_only=True)
    payload["model_config"] = model_config_for_window(17, init_channels=2, growth_rate=2).model_dump_json()
    torch.save(payload, folder / "wrong_window.pt")
    (folder / "code.pt").write_bytes(pickle.dumps(_Payload(str(folder / "pwned"))))
    (folder / "map.png").write_bytes(b"an earlier map")
    (folder / "split.json").write_text('{"name": "x", "protocol": "cv", "seed": 0, "train": ["nope/p000_push1"], "val": [], "test": []}')
    (folder / "not_json.json").write_text("train: everything")
    (folder / "good_split.json").write_text('{"name": "x", "protocol": "cv", "seed": 0, "train": ["s1/p000_push1"], "val": [], "test": []}')
    cases += [
        Case("predict with a truncated checkpoint", ("predict", session, "--checkpoint", "truncated.pt", "--out", "m1.png"), DATA,
             ("truncated.pt", "not a readable checkpoint")),
        Case("predict with random bytes", ("predict", session, "--checkpoint", "random.pt", "--out", "m2.png"), DATA,
             ("random.pt", "safe loader refused it")),
        Case("predict with an empty checkpoint", ("predict", session, "--checkpoint", "empty.pt", "--out", "m3.png"), DATA,
             ("empty.pt", "empty file")),
        Case("predict with another format", ("predict", session, "--checkpoint", "foreign.pt", "--out", "m4.png"), DATA,
             ("foreign.pt", "someone-elses/1")),
        Case("predict with weights of another window", ("predict", session, "--checkpoint", "wrong_window.pt", "--out", "m5.png"), DATA,
             ("wrong_window.pt", "do not fit its model configuration")),
        Case("predict with a pickle that runs code", ("predict", session, "--checkpoint", "code.pt", "--out", "m6.png"), DATA,
             ("code.pt", "nothing was run")),
        Case("predict with a missing checkpoint", ("predict", session, "--checkpoint", "nope.pt", "--out", "m7.png"), DATA,
             ("nope.pt", "not found")),
        Case("predict onto its session", ("predict", session, "--checkpoint", "good.pt", "--out", session), USAGE,
             (session, "is an input of this command")),
        Case("predict onto its checkpoint", ("predict", session, "--checkpoint", "good.pt", "--out", "good.pt"), USAGE,
             ("good.pt", "is an input of this command")),
        Case("predict over an earlier map", ("predict", session, "--checkpoint", "good.pt", "--out", "map.png"), USAGE,
             ("map.png", "--force")),
        Case("predict an absent sequence", ("predict", session, "--checkpoint", "good.pt", "--out", "m8.png", "--key", "p9_push9"), DATA,
             (session, "p9_push9")),
        Case("predict from a text file", ("predict", "text.h5", "--checkpoint", "good.pt", "--out", "m9.png"), DATA,
             ("text.h5", "not an HDF5")),
        Case("evaluate with a missing split", ("evaluate", "good.pt", ".", "--split", "nope.json", "--out", "r1"), DATA,
             ("nope.json", "not found")),
        Case("evaluate with a split that is no JSON", ("evaluate", "good.pt", ".", "--split", "not_json.json", "--out", "r2"), DATA,
             ("not_json.json",)),
        Case("evaluate a split of other sessions", ("evaluate", "good.pt", ".", "--split", "split.json", "--out", "r3"), DATA,
             ("split.json", "not available")),
        Case("evaluate with a damaged checkpoint", ("evaluate", "truncated.pt", ".", "--split", "split.json", "--out", "r4"), DATA,
             ("truncated.pt",)),
        Case("evaluate data that is no folder", ("evaluate", "good.pt", "text.h5", "--split", "split.json", "--out", "r5"), DATA,
             ("text.h5", "not a folder")),
        Case("train with a 7 px window", ("train", ".", "--split", "split.json", "--out", "new.pt", "--window", "7"), USAGE, ("window",)),
        Case("train for no epochs", ("train", ".", "--split", "split.json", "--out", "new.pt", "--epochs", "0"), USAGE, ("epochs",)),
        Case("train at a negative rate", ("train", ".", "--split", "split.json", "--out", "new.pt", "--lr", "-1"), USAGE, ("lr",)),
        Case("train on a missing split", ("train", ".", "--split", "nope.json", "--out", "new.pt"), DATA, ("nope.json", "not found")),
        Case("train into a session", ("train", ".", "--split", "good_split.json", "--out", session), DATA,
             (session, "not a readable checkpoint")),
        Case("train into its split", ("train", ".", "--split", "good_split.json", "--out", "good_split.json"), USAGE,
             ("good_split.json", "is an input of this command")),
    ]

    # The twin and the demo.
    (folder / "old.png").write_bytes(b"an earlier preview")
    cases += [
        Case("twin on every interface", ("twin", "serve", "--host", "0.0.0.0"), USAGE,
             ("0.0.0.0 is not a loopback address", "--allow-remote")),
        Case("twin on the network", ("twin", "serve", "--host", "10.1.2.3"), USAGE, ("not a loopback address",)),
        Case("UR floor on every interface", ("twin", "ur-floor", "--host", "0.0.0.0"), USAGE, ("not a loopback address",)),
        Case("twin with a short token", ("twin", "serve", "--host", "127.0.0.99", "--token", "abc"), USAGE, ("at least 16 characters",)),
        Case("twin faster than its loops", ("twin", "serve", "--host", "127.0.0.99", "--speed", "1e6"), USAGE, ("speed",)),
        Case("preview of an absent phantom", ("twin", "preview", "--phantom", "nope", "--out", "p.png"), USAGE, ("nope",)),
        Case("preview over an earlier one", ("twin", "preview", "--phantom", "block_10p0", "--out", "old.png"), USAGE,
             ("old.png", "--force")),
        Case("demo at an unknown scale", ("demo", "--scale", "huge", "--out", "demo"), USAGE, ("huge",)),
    ]
    return cases


class _Payload:
    """A pickle that would touch a file when loaded: a checkpoint must never run it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, ...]]:
        return (os.system, (f"touch {self.marker}",))


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder below ``folder`` with a digest of its bytes."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        out[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_every_bad_input_ends_in_a_clear_error_and_changes_nothing(tmp_path: Path, make_session: Callable[..., Path],
                                                                   shearlab_cli: Callable[..., Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    cases = build_cases(folder, make_session)
    assert len(cases) >= 80
    monkeypatch.chdir(folder)
    before = snapshot(folder)
    problems = []
    for case in cases:
        result = shearlab_cli(*case.args)
        shown = result.out + result.err
        flat = " ".join(shown.replace("│", " ").split())
        missing = [s for s in case.says if s not in flat]
        # The one error handler's line; click's own usage errors (a bad option value) come as its usage box.
        one_line = result.err.startswith("error: ") and result.err.count("\n") == 1
        if result.code != case.code or "Traceback" in shown or missing or not (one_line or result.code == USAGE):
            problems.append(f"{case.name}: exit {result.code} (expected {case.code}), missing {missing}: {flat[:400]}")
        after = snapshot(folder)
        if after != before:
            changed = sorted(set(after.items()) ^ set(before.items()))
            problems.append(f"{case.name}: files changed {changed[:4]}")
            before = after
    assert not problems, "\n".join(problems)
    assert not (folder / "pwned").exists()
