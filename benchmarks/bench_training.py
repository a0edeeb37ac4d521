"""Training-package benchmark: dense vs window-by-window inference, training speed, ToF, normalisation cost.

Run: ``.venv/bin/python benchmarks/bench_training.py [--device cpu|cuda] [--windows 65,33] [--mixed-precision]
[--compare-tile 128] [--only inference|training|tof|normalisation]``.

* Dense full-field inference of the whole 250 x 600 field with the paper-sized width (16 initial channels,
  growth 16), from a host array to a host map (tiles sized from free memory); ``--compare-tile`` also
  times fixed tiles of that side in the same process. Window by window is timed on a sample of windows,
  batched, and extrapolated to every position: the ratio of the two is the dense speed-up.
* Positions/s per window size (65, 33, 17, 9, 5), dense and window by window.
* Training windows/s per window size (window mode, batch 16, forward + backward + Adam step).
* ToF time per 35 x 250 x 600 sequence.
* Normalisation: a compact net (w = 17, 8 initial channels, growth 8) trained on analytic shear waves (random amplitude per sequence)
  with the
  paper's per-window z-score and with per-sequence normalisation, same data and seed; test MAE of each.
* Peak resident memory after each section.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from shearlab.protocols.sequences import ImageGrid, ImagingSpec
from shearlab.protocols.signal.modulus import speed_to_modulus_kpa
from shearlab.protocols.signal.tof import tof_speed_map
from shearlab.training.config import TrainConfig
from shearlab.training.inference import predict_dense, predict_windows
from shearlab.training.model import DenseNet3d, model_config_for_window
from shearlab.training.normalisation import normalise_volume
from shearlab.training.synthetic import shear_wave_volume, small_grid
from shearlab.training.trainer import predict_dataset, train
from shearlab.training.windows import VolumeWindowDataset

FIELD = (35, 250, 600)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def bench_inference(device: torch.device, windows_px: list[int], mixed_precision: bool, compare_tile_px: int) -> None:
    print("\n== dense full-field vs window-by-window inference (paper width: 16 initial, growth 16), "
          f"{'bf16' if mixed_precision else 'fp32'} ==")
    rng = np.random.default_rng(0)
    windows_per_size = {65: 8, 33: 16, 17: 64, 9: 128, 5: 256}
    batch = 250 if device.type == "cuda" else 16
    for w in windows_px:
        n_windows = windows_per_size[w] * (32 if device.type == "cuda" else 1)
        torch.manual_seed(0)
        model = DenseNet3d.from_config(model_config_for_window(w)).eval().to(device)
        positions = (FIELD[1] - w + 1) * (FIELD[2] - w + 1)
        volume = rng.standard_normal(FIELD).astype(np.float32)
        predict_dense(model, volume[:, : w + 8, : w + 8], device=device, mixed_precision=mixed_precision)  # warm-up
        # From a host array to a host map: upload, normalisation, tiles, assembly and download included.
        dense_s = min(_timed(lambda: predict_dense(model, volume, device=device, mixed_precision=mixed_precision), device)
                      for _ in range(3 if device.type == "cuda" else 1))
        compared = ""
        if compare_tile_px:
            tiled_s = _timed(lambda: predict_dense(model, volume, tile_px=compare_tile_px, device=device,
                                                   mixed_precision=mixed_precision), device)
            compared = f" (tiles of {compare_tile_px} px: {tiled_s:.2f} s, {tiled_s / dense_s:.2f}x)"
        windows = rng.standard_normal((n_windows, 1, FIELD[0], w, w)).astype(np.float32)
        predict_windows(model, windows[:2], device=device, mixed_precision=mixed_precision)
        window_s = _timed(lambda: predict_windows(model, windows, batch_size=batch, device=device,
                                                  mixed_precision=mixed_precision), device)
        window_rate = n_windows / window_s
        print(f"w={w:2d}: dense full field {dense_s:7.3f} s host to host, {positions / dense_s:9.0f} positions/s"
              f"{compared} | window by window {window_rate:8.2f} positions/s ({n_windows} windows, batch {batch}), "
              f"{1e3 / window_rate:.3f} ms each, full field {positions / window_rate / 3600:6.2f} h (extrapolated) | "
              f"dense speed-up {positions / dense_s / window_rate:7.1f}x | load {os.getloadavg()[0]:.1f}")
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


def bench_training_speed(device: torch.device) -> None:
    print("\n== training windows/s (paper width, batch 16, window mode) ==")
    for w in (65, 33, 17, 9, 5):
        torch.manual_seed(0)
        model = DenseNet3d.from_config(model_config_for_window(w)).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        batch = 4 if w == 65 else 16
        x = torch.randn(batch, 1, 35, w, w, device=device)
        y = torch.full((batch,), 50.0, device=device)

        def step() -> None:
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step()
        steps = 2 if w >= 33 else 5
        seconds = _timed(lambda: [step() for _ in range(steps)], device)
        print(f"w={w:2d}: {steps * batch / seconds:8.1f} windows/s")
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


def bench_tof() -> None:
    print("\n== ToF per sequence (35 x 250 x 600) ==")
    grid = ImageGrid.from_spec(ImagingSpec())
    rng = np.random.default_rng(1)
    volume = shear_wave_volume(grid, speed_m_s=3.5, push_lateral_m=-4e-3, rng=rng, noise_um=0.5, onset_s=0.1e-3)
    seconds = _timed(lambda: tof_speed_map(volume, grid, push_lateral_m=-4e-3), torch.device("cpu"))
    result = tof_speed_map(volume, grid, push_lateral_m=-4e-3)
    print(f"ToF: {seconds:.2f} s per sequence, failure fraction {result.failure_fraction:.3f}")
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


def _normalisation_data(seed: int, n: int) -> tuple[list[np.ndarray], list[float]]:
    rng = np.random.default_rng(seed)
    grid = small_grid(48, 96)
    volumes, labels = [], []
    for _ in range(n):
        speed = float(rng.uniform(2.4, 6.5))
        # Displacement amplitude varies between sequences independently of stiffness here, so neither
        # normalisation is handed the answer through the amplitude.
        volumes.append(shear_wave_volume(grid, speed_m_s=speed, push_lateral_m=grid.lateral_m[0] - rng.uniform(1e-3, 4e-3),
                                         rng=rng, noise_um=0.3, amplitude_um=float(rng.uniform(3, 15)),
                                         onset_s=float(rng.uniform(-0.2e-3, 0.2e-3))))
        labels.append(float(speed_to_modulus_kpa(np.array(speed))))
    return volumes, labels


def bench_normalisation(device: torch.device, epochs: int, window_px: int, n_train: int) -> None:
    print(f"\n== per-window z-score (paper) vs per-sequence normalisation (dense-compatible), w = {window_px} ==")
    train_v, train_l = _normalisation_data(10, n_train)
    test_v, test_l = _normalisation_data(11, 48)
    config = model_config_for_window(window_px, init_channels=8, growth_rate=8)
    for normalisation in ("window", "sequence"):
        per_sequence = normalisation == "sequence"
        train_data = VolumeWindowDataset(train_v, train_l, window_px, normalise_per_sequence=per_sequence, seed=0,
                                         augment=True)
        torch.manual_seed(0)
        settings = TrainConfig(epochs=epochs, batch_size=16, lr=2e-3, normalisation=normalisation, device=device.type)
        t0 = time.perf_counter()
        result = train(DenseNet3d.from_config(config), train_data, None, settings)
        errors = []
        for epoch in range(4):
            test_data = VolumeWindowDataset(test_v, test_l, window_px, normalise_per_sequence=per_sequence, seed=1)
            test_data.set_epoch(epoch)
            pred, label = predict_dataset(result.model, test_data, normalisation=normalisation, device=device)
            errors.append(np.abs(pred - label))
        errors = np.concatenate(errors)
        print(f"{normalisation:>8}: test MAE {errors.mean():6.2f} +/- {errors.std():5.2f} kPa "
              f"({epochs} epochs, {time.perf_counter() - t0:.0f} s; labels 17-127 kPa)")
    print(f"peak RSS {_peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="65,33,17,9,5", help="window sizes of the inference section")
    parser.add_argument("--mixed-precision", action="store_true", help="bfloat16 autocast for inference")
    parser.add_argument("--compare-tile", type=int, default=0, help="also time dense maps in tiles of this side")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--norm-epochs", type=int, default=60)
    parser.add_argument("--norm-window", type=int, default=17)
    parser.add_argument("--norm-train", type=int, default=192, help="training sequences")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("inference", "training", "tof", "normalisation"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    if args.only in (None, "inference"):
        bench_inference(device, [int(w) for w in args.windows.split(",")], args.mixed_precision, args.compare_tile)
    if args.only in (None, "training"):
        bench_training_speed(device)
    if args.only in (None, "tof"):
        bench_tof()
    if args.only in (None, "normalisation"):
        bench_normalisation(device, args.norm_epochs, args.norm_window, args.norm_train)
    # Per-sequence normalisation of one volume, for scale.
    volume = np.random.default_rng(2).standard_normal(FIELD).astype(np.float32)
    print(f"\nper-sequence normalisation of one volume: {_timed(lambda: normalise_volume(volume), torch.device('cpu')) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
