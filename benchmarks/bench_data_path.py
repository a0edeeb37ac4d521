"""Training data path against the training step it feeds, in one process (issue 15).

Run: ``.venv/bin/python benchmarks/bench_data_path.py [--device cpu|cuda] [--sequences N] [--window W]``.

Paper-sized synthetic sessions (35 x 250 x 600), labelled; training windows of one epoch at a time,
augmented (flips, half turns, blur, erasing) and normalised per sequence, no model:

* files: ``WindowDataset`` read item by item from the session files (what training did before);
* memory: the same dataset with ``in_memory=True``, cut a batch at a time by ``dataset.batches`` on
  ``--device`` (what the trainer reads without workers); its one-off cost, reading and verifying every
  sequence, is printed as the store's build time;
* memory, ``--workers`` persistent loader workers cutting item by item (what the trainer reads with
  ``num_workers``: a CPU's other cores);
* the pure training step (paper width, forward + backward + Adam) on random tensors of the same shape.

The ratio data path / training step is the figure to read: above 1 the step, not the data, bounds
training. ``float16``: what the half-precision store changes: the largest difference of a normalised
window and of a net's estimate (random weights, paper width, so no training is needed) against float32.
Load averages are printed with every figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from shearlab.datasets import Catalogue, SessionInfo, SessionWriter
from shearlab.training.augment import AugmentConfig
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.synthetic import synthetic_record
from shearlab.training.trainer import EpochSampler
from shearlab.training.windows import WindowDataset


def _load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(run, device: torch.device, seconds: float) -> float:  # type: ignore[no-untyped-def]
    """Windows per second of ``run()`` (which returns how many it made), repeated for ``seconds``."""
    run()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += run()
    _sync(device)
    return n / (time.perf_counter() - t0)


def _write_sessions(folder: Path, sequences: int) -> None:
    per_session = 7
    for s in range(0, sequences, per_session):
        info = SessionInfo(kind="block", session_id=f"bench{s}", phantom=f"b{s}", batch_id=f"b{s}",
                           concentration_pct=10.0)
        with SessionWriter.open(folder / f"bench{s}.h5", session=info, fsync=False) as writer:
            for push in range(1, min(per_session, sequences - s) + 1):
                writer.append_sequence(synthetic_record(info, s, push, seed=s))


def _training_step_rate(window: int, batch: int, device: torch.device, seconds: float) -> float:
    torch.manual_seed(0)
    model = DenseNet3d.from_config(model_config_for_window(window)).to(device).train()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, 35, window, window, device=device)
    y = torch.full((batch,), 50.0, device=device)

    def step() -> int:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return batch

    return _rate(step, device, seconds)


def _float16_effect(refs: list, window: int, device: torch.device) -> None:  # type: ignore[type-arg]
    kwargs = dict(epoch_seed=0, normalisation="sequence", windows_per_sequence=8, in_memory=True)
    full = WindowDataset(refs, window, **kwargs)  # type: ignore[arg-type]
    half = WindowDataset(refs, window, store_dtype=torch.float16, **kwargs)  # type: ignore[arg-type]
    order = list(range(len(full)))
    a = torch.cat([x for x, _ in full.batches(order, 32, device)])
    b = torch.cat([x for x, _ in half.batches(order, 32, device)])
    torch.manual_seed(0)
    model = DenseNet3d.from_config(model_config_for_window(window)).to(device).eval()
    with torch.no_grad():
        pa = torch.cat([model(a[i:i + 8]) for i in range(0, len(a), 8)])
        pb = torch.cat([model(b[i:i + 8]) for i in range(0, len(b), 8)])
    noise = 0.3 / np.mean([r.displacement_std_um for r in refs])  # the synthetic data's 0.3 um noise, normalised
    print(f"float16 store: largest change of a normalised window {float((a - b).abs().max()):.2e} "
          f"(the displacement noise is {noise:.2e} in the same units); of a net's estimate "
          f"{float((pa - pb).abs().max()):.2e} kPa over {len(a)} windows | {_load()}")
    print(f"store memory: {full.store.nbytes / 2**20:.0f} MiB float32, {half.store.nbytes / 2**20:.0f} MiB float16 "  # type: ignore[union-attr]
          f"for {len(refs)} sequences")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sequences", type=int, default=14)
    parser.add_argument("--window", type=int, default=65)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (default: every core, the data path alone; 1: as if a training step shared them)")
    parser.add_argument("--workers", type=int, default=2, help="persistent loader workers to time (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {os.cpu_count()} cores, {args.threads} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_sessions(folder, args.sequences)
        refs = Catalogue(folder).query(labelled=True)
        w, augment = args.window, AugmentConfig()
        per_sequence = max(1, args.batch // len(refs))
        files = WindowDataset(refs, w, normalisation="sequence", augment=augment, windows_per_sequence=per_sequence)
        t0 = time.perf_counter()
        memory = WindowDataset(refs, w, normalisation="sequence", augment=augment, windows_per_sequence=per_sequence,
                               in_memory=True)
        build_s = time.perf_counter() - t0
        epoch = iter(range(10**9))

        def from_files() -> int:
            files.set_epoch(next(epoch))
            for i in range(len(files)):
                files[i]
            return len(files)

        def from_memory() -> int:
            memory.set_epoch(next(epoch))
            for _ in memory.batches(range(len(memory)), args.batch, device, reuse=True):
                pass
            return len(memory)

        sampler = EpochSampler()
        workers = DataLoader(memory, batch_size=args.batch, sampler=sampler, num_workers=args.workers,
                             persistent_workers=True) if args.workers else None

        def from_workers() -> int:
            sampler.items = [(next(epoch), i) for i in range(len(memory))]
            for _ in workers:  # type: ignore[union-attr]
                pass
            return len(memory)

        files_rate = _rate(from_files, torch.device("cpu"), args.seconds)
        print(f"{w} px, files, item by item: {files_rate:8.0f} windows/s | {_load()}")
        memory_rate = _rate(from_memory, device, args.seconds)
        print(f"{w} px, memory, batches of {args.batch} on {device}: {memory_rate:8.0f} windows/s "
              f"({memory_rate / files_rate:.1f}x the files) | {_load()}")
        if workers is not None:
            workers_rate = _rate(from_workers, torch.device("cpu"), args.seconds)
            print(f"{w} px, memory, {args.workers} persistent loader workers, item by item: {workers_rate:8.0f} windows/s "
                  f"({workers_rate / files_rate:.1f}x the files) | {_load()}")
        print(f"store built in {build_s:.2f} s ({len(refs)} sequences read and verified, "
              f"{memory.store.nbytes / 2**20:.0f} MiB)")  # type: ignore[union-attr]
        step_batch = args.batch if device.type == "cuda" else 4
        step_rate = _training_step_rate(w, step_batch, device, args.seconds)
        print(f"{w} px training step on random tensors, batch {step_batch}: {step_rate:8.1f} windows/s | {_load()}")
        print(f"ratio data path / training step: {memory_rate / step_rate:.1f} "
              f"(files: {files_rate / step_rate:.1f})")
        _float16_effect(refs, w, device)


if __name__ == "__main__":
    main()
