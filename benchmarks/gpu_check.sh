#!/usr/bin/env bash
# The GPU checks in one short run (a machine with CUDA and torch; none of the project's other dependencies):
# the GPU tests, then inference latency per backbone (batch 1, p50/p95, CPU and GPU), then training throughput
# (synthetic-input ceiling vs our end-to-end input path), then the box detector's img/s (training and inference, each against its synthetic-input ceiling), then the classifier's
# throughput under torchrun: 2 processes, DistributedDataParallel over NCCL (needs 2 GPUs; skipped on one:
# NCCL refuses two ranks on one device).
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Figures go to stdout and OUT_DIR (default: a temp folder). Sized to finish in ~7 minutes on one H100/H200
# (~9 with two GPUs).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-${OUT:-$(mktemp -d)}}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name(0))"
# --noconftest: tests/conftest.py needs the label store (sqlalchemy), which a bare GPU box lacks.
timeout 200 python3 -m pytest -q -p no:cacheprovider --noconftest -o addopts="" tests/gpu 2>&1 | tee "$out/gpu_tests.log"
# Inference latency per image at batch 1 (p50/p95, CPU and GPU) and size of each backbone: the release gates'
# figures (docs/model.md). It runs on a CPU alone too: PYTHONPATH=. python benchmarks/latency.py
timeout 120 python3 benchmarks/latency.py --json "$out/latency.json" 2>&1 | tee "$out/latency.log"
timeout 360 python3 benchmarks/train_throughput.py --models resnet18 efficientnet_b0 --compile off on \
  --images 8192 --epochs 2 --steps 50 --json "$out/throughput.json" 2>&1 | tee "$out/throughput.log"
# The detector (mobilenet_v3_320 at 320 px, batch 32) on 1,024 synthetic PNG scenes; tested on a CPU at a tiny size
# (tests/core/test_boxes_detector.py).
timeout 180 python3 benchmarks/detector_throughput.py --backbone mobilenet_v3_320 --image-size 320 --batch-size 32 \
  --images 1024 --steps 30 --json "$out/detector_throughput.json" 2>&1 | tee "$out/detector_throughput.log"
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
if [ "$gpus" -ge 2 ]; then
  timeout 240 python3 -m torch.distributed.run --standalone --nproc-per-node 2 benchmarks/train_throughput.py \
    --models resnet18 --compile off --images 8192 --epochs 2 --steps 50 --json "$out/throughput_ddp2.json" \
    2>&1 | tee "$out/throughput_ddp2.log"
else
  echo "2-process NCCL DDP run skipped: $gpus GPU(s) on this machine (needs 2)" | tee "$out/throughput_ddp2.log"
fi
