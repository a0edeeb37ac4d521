#!/usr/bin/env bash
# Issue 15's CUDA checks, prepared for a machine with an NVIDIA GPU (not measured on the 2-core
# development machine, which has none). Needs a Python with a CUDA build of torch and shearlab installed
# (`pip install -e '.[train,test]'`); PY overrides which. About 5 minutes on an H200.
#
# Targets (issue 15): training at 65 px runs at >= 90 % of the pure-step rate (bench_data_path: the
# "ratio data path / training step" must be >= 1, so the step, not the data, bounds training), and a
# 250 x 600 map at 65 px takes <= 0.06 s from a host array to a host map (bench_training: "dense full
# field ... s host to host", bf16).
set -euo pipefail
PY=${PY:-.venv/bin/python}
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
echo "== the GPU's windows and maps against the CPU's =="
$PY -m pytest -q -p no:cacheprovider tests/training/test_device.py
echo "== data path next to the training step, 65 px, batch 250 (one process) =="
$PY benchmarks/bench_data_path.py --device cuda --sequences 56 --batch 250 --seconds 5 --workers 0
echo "== dense maps host to host next to window by window, 65 and 5 px =="
$PY benchmarks/bench_training.py --device cuda --only inference --windows 65,5 --mixed-precision
$PY benchmarks/bench_training.py --device cuda --only inference --windows 65
