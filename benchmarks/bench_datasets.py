"""Session-file figures on paper-sized sequences (35 x 250 x 600): write throughput, compression,
random-window read rate, bytes on disk.

Run: ``.venv/bin/python benchmarks/bench_datasets.py [--sequences N] [--dir PATH]``. Ratios are
against baselines measured in the same run on the same disk.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from shearlab.datasets import Catalogue, SessionInfo, SessionWriter
from shearlab.datasets.layout import volume_chunks
from shearlab.training.synthetic import synthetic_record
from shearlab.training.windows import WindowDataset

# Training consumption on this kind of machine (SPEC §2, paper-sized net, 2 CPU cores), windows/s.
CPU_TRAINING_WINDOWS_PER_S = {65: 3.0, 17: 43.0}
# Paper: 0.07 ms per estimate at 5 x 5 on a V100 (inference); a GPU training run reads at least
# this order of magnitude per second if the data pipeline is to keep up.
GPU_WINDOWS_PER_S = 1.0 / 0.07e-3


def _plain_write(path: Path, volumes: list[np.ndarray]) -> float:
    """Baseline: the same bytes, appended sequentially with one fsync per sequence."""
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for volume in volumes:
            fh.write(memoryview(np.ascontiguousarray(volume)).cast("B"))
            fh.flush()
            os.fsync(fh.fileno())
    return time.perf_counter() - t0


def _session_write(path: Path, info: SessionInfo, records: list) -> float:  # type: ignore[type-arg]
    t0 = time.perf_counter()
    with SessionWriter.open(path, session=info, resume=False, fsync=True) as writer:
        for record in records:
            writer.append_sequence(record)
    return time.perf_counter() - t0


def _compression(volume: np.ndarray, folder: Path) -> None:
    for name, kwargs in (("none", {}), ("gzip4+shuffle", {"compression": "gzip", "compression_opts": 4, "shuffle": True}),
                         ("lzf+shuffle", {"compression": "lzf", "shuffle": True})):
        path = folder / f"c_{name}.h5"
        t0 = time.perf_counter()
        with h5py.File(path, "w") as fh:
            fh.create_dataset("d", data=volume[None], chunks=volume_chunks(*volume.shape), **kwargs)
        dt = time.perf_counter() - t0
        print(f"  displacement {name:>14}: {path.stat().st_size / volume.nbytes:6.3f} of raw size, "
              f"write {volume.nbytes / dt / 2**20:7.1f} MiB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequences", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3, help="plain / session / plain rounds for the write figure")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        info = SessionInfo(kind="block", session_id="bench", phantom="b10", batch_id="b10", concentration_pct=10.0)
        records = [synthetic_record(info, pos, 4, seed=pos) for pos in range(args.sequences)]
        volumes = [r.displacement_um for r in records]
        mib = sum(v.nbytes for v in volumes) / 2**20  # type: ignore[union-attr]
        print(f"{args.sequences} sequences of 35 x 250 x 600 float32 ({mib / args.sequences:.1f} MiB each)")

        # This machine's disk is virtual: a plain fsync'd write of the same bytes ran anywhere from 500 to
        # 2,000 MiB/s within an hour. Each round brackets the session between two plain writes; the
        # median over rounds is the figure.
        ratios = []
        for round_ in range(args.rounds):
            plain_s = _plain_write(folder / "plain.bin", volumes)  # type: ignore[arg-type]
            session_path = folder / "sessions" / "bench.h5"
            if round_:
                session_path.unlink()
            session_s = _session_write(session_path, info, records)
            plain_s2 = _plain_write(folder / "plain2.bin", volumes)  # type: ignore[arg-type]
            baseline = min(plain_s, plain_s2)
            ratios.append(baseline / session_s)
            print(f"write: session {mib / session_s:.1f} MiB/s ({session_s / args.sequences * 1e3:.0f} ms/sequence), "
                  f"plain sequential+fsync {mib / baseline:.1f} MiB/s; ratio session/plain throughput "
                  f"{baseline / session_s:.2f}")
        print(f"median ratio over {args.rounds} rounds: {float(np.median(ratios)):.2f}")
        size = (folder / "sessions" / "bench.h5").stat().st_size
        print(f"bytes on disk per sequence: {size / args.sequences / 2**20:.2f} MiB "
              f"({size / args.sequences / volumes[0].nbytes:.3f} x the raw displacement)")  # type: ignore[union-attr]

        print("compression of one displacement volume (synthetic: pulse + 0.3 um noise):")
        _compression(volumes[0], folder)  # type: ignore[arg-type]

        refs = Catalogue(folder / "sessions").query()
        for window in (65, 33, 17, 5):
            ds = WindowDataset(refs, window, epoch_seed=0)
            n = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 1.5:
                ds.set_epoch(n)
                for i in range(len(ds)):
                    ds[i]
                    n += 1
            rate = n / (time.perf_counter() - t0)
            ds.close()
            cpu = CPU_TRAINING_WINDOWS_PER_S.get(window)
            vs_cpu = f", {rate / cpu:.0f}x CPU training need ({cpu:g}/s)" if cpu else ""
            print(f"random {window:2d} px windows (1 process, page cache warm): {rate:7.0f}/s{vs_cpu}, "
                  f"{rate / GPU_WINDOWS_PER_S:.2f}x a V100's 5x5 inference rate")


if __name__ == "__main__":
    main()
