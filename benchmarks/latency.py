"""Inference latency per image at batch 1 (p50/p95) and size of every backbone, as model_evaluation's release
gates measure them (core/training/gates.py): on the CPU, and on the GPU too when CUDA is present.

    PYTHONPATH=. python benchmarks/latency.py [--runs 30] [--warmup 5] [--threads 1] [--json OUT.json]

Untrained models (latency and size do not depend on the weights), uint8 input with the normalisation built in.
small_cnn at the demo's 32 px grayscale, the ImageNet backbones at 224 px RGB. Needs only torch and torchvision
(benchmarks/gpu_check.sh runs it on a bare GPU box).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from labeling_assets.core.training import gates  # noqa: E402
from labeling_assets.core.training.config import TrainConfig  # noqa: E402
from labeling_assets.core.training.models import build_model  # noqa: E402

# (label, backbone, head, image size, channels)
MODELS = (
    ("small_cnn", "small_cnn", "linear", 32, 1),
    ("resnet18", "resnet18", "linear", 224, 3),
    ("efficientnet_b0", "efficientnet_b0", "linear", 224, 3),
    ("efficientnet_b0+attention", "efficientnet_b0", "attention", 224, 3),
    ("mobilenet_v3_small", "mobilenet_v3_small", "linear", 224, 3),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=gates.LATENCY_RUNS)
    parser.add_argument("--warmup", type=int, default=gates.LATENCY_WARMUP)
    parser.add_argument("--threads", type=int, default=gates.LATENCY_THREADS,
                        help="torch CPU threads while timing (default: 1, as model_evaluation measures)")  # fmt: skip
    parser.add_argument("--classes", type=int, default=14, help="outputs (ChestX-ray14: 14)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if gpu else "no GPU"
    print(f"torch {torch.__version__}, {args.threads} CPU threads, {device}; batch 1, "
          f"{args.warmup} warm-up + {args.runs} timed runs per device")  # fmt: skip
    header = f"{'model':<27} {'px':>4} {'params MiB':>10} {'file MiB':>9} {'CPU p50':>8} {'CPU p95':>8}"
    print(header + (f" {'GPU p50':>8} {'GPU p95':>8}" if gpu else "") + "  (ms per image)")
    rows = []
    for label, backbone, head, size, channels in MODELS:
        config = TrainConfig(num_classes=args.classes, backbone=backbone, head=head, image_size=size, channels=channels)  # type: ignore[arg-type]
        model = build_model(config)
        measured = gates.measure(model, (channels, size, size), warmup=args.warmup, runs=args.runs, gpu=gpu,
                                 threads=args.threads)  # fmt: skip
        line = (f"{label:<27} {size:>4} {measured.size.parameter_bytes / 2**20:>10.2f} "
                f"{measured.size.state_dict_bytes / 2**20:>9.2f}")  # fmt: skip
        for lat in measured.latency:
            line += f" {lat.p50_ms:>8.2f} {lat.p95_ms:>8.2f}"
        print(line, flush=True)
        rows.append({"model": label, "image_size": size, "channels": channels, "size": asdict(measured.size),
                     "latency": [asdict(lat) for lat in measured.latency]})  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "threads": args.threads, "rows": rows},
                                              indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
