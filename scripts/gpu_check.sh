#!/usr/bin/env bash
# GPU check of the images path (docs/PERFORMANCE.md): CPU-vs-GPU and fp32-vs-tf32/bf16 agreement, and images/s for
# FairFace and EmoNet at batch 256 on synthetic chips. Prints one JSON line on stdout; without CUDA it says so.
# --trainer-models K first benches the corrector trainer on CUDA against the CPU trainer (K networks each; "trainer").
# With --detector-images N also face detection: dlib's detector ported to torch on the GPU vs dlib on the CPU cores.
# Usage: scripts/gpu_check.sh [--batch 256] [--iters 10] [--pipeline-chips 4096] [--cpu-images 8] [--cpu-pipeline-chips 200]
#        [--trainer-models 1024] [--trainer-epochs 500] [--detector-images 64]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then PYTHON=python3; fi
exec "$PYTHON" -m benchmark.tools.gpu_check "$@"
