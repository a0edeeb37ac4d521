"""A session on a disk that fills up: a clean error, no crash at exit, every completed sequence kept, and
the session resumed once space is freed. On a real (small, 48 MiB) filesystem: a tmpfs mounted in a user
and mount namespace of its own, so the test needs no privileges and leaves the machine's mounts alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# One run of the writer on the small disk: append pushes 1..7 of position 0, another process filling the
# disk before push 3; ``race`` skips the free-space check, as when the disk fills between check and write.
CHILD = '''
import json, sys
from pathlib import Path
import shearlab.datasets.writer as writer_module
from shearlab.datasets.errors import SessionFileError
from shearlab.datasets.integrity import check_session
from shearlab.training.synthetic import synthetic_record, synthetic_session_info

folder, fill, race = Path(sys.argv[1]), sys.argv[2] == "fill", sys.argv[3] == "race"
if race:
    writer_module.ensure_free = lambda *args, **kwargs: None
info = synthetic_session_info("s1", concentration_pct=10.0)
path, outcome = folder / "s1.h5", {}
try:
    with writer_module.SessionWriter.open(path, session=info, resume=True) as writer:
        for push in range(1, 8):
            if f"p000_push{push}" in writer.completed_keys():
                continue
            if push == 3 and fill:
                with open(folder / "filler", "wb") as filler:
                    try:
                        while True:
                            filler.write(bytes(65536))
                    except OSError:
                        pass
            writer.append_sequence(synthetic_record(info, 0, push))
except SessionFileError as exc:
    outcome["error"] = f"{type(exc).__name__}: {exc}"
report = check_session(path)
outcome.update(ok=report.ok, complete=report.n_complete, half_written=report.n_incomplete)
print(json.dumps(outcome), flush=True)
'''


def run_on_small_disk(tmp_path: Path, steps: list[str]) -> list[str]:
    """Run shell ``steps`` with a 48 MiB tmpfs at ``tmp_path / 'disk'`` (``$DISK``) in a namespace of their own."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = " && ".join([f"mount -t tmpfs -o size=48m tmpfs {disk}", f"export DISK={disk}", *steps])
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                            capture_output=True, text=True, timeout=240, check=False)
    if result.returncode != 0 and ("unshare" in result.stderr or "mount:" in result.stderr):
        pytest.skip(f"no user and mount namespaces here: {result.stderr.strip()[:200]}")
    return [line for line in result.stdout.splitlines() if line.startswith("exit") or line.startswith("{")]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_a_disk_that_fills_mid_session_ends_cleanly_and_the_session_resumes(tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    python = f"{sys.executable} {child} $DISK"
    lines = run_on_small_disk(tmp_path, [
        # The disk fills between the check and the write: HDF5's write fails with ENOSPC.
        f"{{ {python} fill race; echo exit $?; }}",
        # Still full: the check refuses the next sequence before anything is written.
        f"{{ {python} keep check; echo exit $?; }}",
        # Space freed: the session resumes and completes.
        f"rm $DISK/filler && {{ {python} keep check; echo exit $?; }}",
    ])
    assert len(lines) == 6, lines
    raced, race_exit, refused, refused_exit, resumed, resumed_exit = lines
    # No segfault at exit (HDF5 used to crash in its exit handler after a failed write: exit 139).
    assert race_exit == refused_exit == resumed_exit == "exit 0"
    raced_outcome = json.loads(raced)
    assert raced_outcome["error"].startswith("SessionWriteError") and "No space left on device" in raced_outcome["error"]
    assert raced_outcome["ok"] and raced_outcome["complete"] == 2
    refused_outcome = json.loads(refused)
    assert refused_outcome["error"].startswith("DiskFullError") and str(tmp_path / "disk") in refused_outcome["error"]
    assert "free space, then rerun to resume" in refused_outcome["error"] and refused_outcome["complete"] == 2
    resumed_outcome = json.loads(resumed)
    assert "error" not in resumed_outcome and resumed_outcome["ok"]
    assert resumed_outcome["complete"] == 7 and resumed_outcome["half_written"] == 0
