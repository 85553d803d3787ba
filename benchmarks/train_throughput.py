"""Training throughput on one GPU (or several, under torchrun): the synthetic-input ceiling vs our end-to-end
input path, same run.

    python benchmarks/train_throughput.py                       # resnet18 + efficientnet_b0, 224 px
    python benchmarks/train_throughput.py --models resnet18 --compile on off --images 20000
    torchrun --standalone --nproc-per-node 2 benchmarks/train_throughput.py --models resnet18 --compile off

Under torchrun (several GPUs of one node) every process trains the same model under DistributedDataParallel
(NCCL) on its shard of the synthetic cache, --batch-size is the global batch (split over the processes),
and the img/s figures are summed over the processes; rank 0 alone prints and writes --json.

For each model and compile setting ONE trainer (same weights, same compiled graph) is timed twice:
- ceiling: the optimisation step on one static, already-prepared device batch (no input path at all);
- end-to-end: the real training loop of ``core.training.loop.fit``: random indices, uint8 gather from the
  device-resident tensor cache, uint8 -> bf16, GPU augmentation (rotation, brightness/contrast, noise),
  channels_last, forward, backward, fused AdamW; steady-state epochs (the first is excluded).
The bar (DESIGN §8): end-to-end >= 80% of the ceiling. Needs only torch, torchvision and numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a bare checkout (GPU machine)

from labeling_assets.core.training.config import TrainConfig  # noqa: E402
from labeling_assets.core.training.distributed import from_environment, shutdown  # noqa: E402
from labeling_assets.core.training.throughput import measure_throughput  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["resnet18", "efficientnet_b0"])
    parser.add_argument("--compile", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=16384, help="size of the synthetic uint8 dataset")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2, help="timed end-to-end epochs after a warm-up epoch")
    parser.add_argument("--steps", type=int, default=100, help="timed synthetic steps")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--device", default="cuda", help="cpu only to smoke-test the script (tiny sizes)")
    args = parser.parse_args()
    ranks = from_environment()
    try:
        return _run(args, ranks.is_main, ranks.world_size)
    finally:
        shutdown()


def _run(args: argparse.Namespace, is_main: bool, processes: int) -> int:
    def say(text: str) -> None:
        if is_main:  # one report, not one per process
            print(text, flush=True)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: this benchmark measures GPU training throughput", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu (smoke test only)"
    if processes > 1:
        name = f"{processes} x {name} (torchrun, DDP)"
    say(
        f"device: {name}; torch {torch.__version__}; batch {args.batch_size}; {args.image_size} px; bf16 autocast"
    )
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    images = rng.integers(0, 256, (args.images, 3, args.image_size, args.image_size), dtype=np.uint8)
    labels = rng.integers(0, args.classes, args.images)
    say(
        f"synthetic cache: {args.images} images, {images.nbytes / 2**30:.2f} GiB ({time.perf_counter() - start:.1f} s)"
    )
    header = f"{'model':<16} {'compile':<8} {'ceiling img/s':>14} {'end-to-end img/s':>17} {'ratio':>6} {'upload s':>9} {'warm-up s':>10}"
    say(header)
    say("-" * len(header))
    results = []
    for model in args.models:
        for compile_mode in args.compile:
            config = TrainConfig(
                num_classes=args.classes,
                backbone=model,
                image_size=args.image_size,
                channels=3,
                batch_size=args.batch_size,
                compile=compile_mode,
                device=args.device,
            )
            t = measure_throughput(
                images, labels, config, synthetic_steps=args.steps, end_to_end_epochs=args.epochs
            )
            row = {
                "model": model,
                "compile": t.compiled,
                "ceiling_img_s": round(t.synthetic_images_per_s, 1),
                "end_to_end_img_s": round(t.end_to_end_images_per_s, 1),
                "ratio": round(t.ratio, 4),
                "upload_s": round(t.upload_seconds, 2),
                "warmup_s": round(t.compile_seconds, 1),
                "resident": t.resident,
                "processes": t.processes,
            }
            results.append(row)
            say(
                f"{model:<16} {compile_mode:<8} {t.synthetic_images_per_s:>14.0f} {t.end_to_end_images_per_s:>17.0f} "
                f"{t.ratio:>6.1%} {t.upload_seconds:>9.2f} {t.compile_seconds:>10.1f}"
            )
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    worst = min(r["ratio"] for r in results)
    say(f"worst end-to-end / ceiling: {worst:.1%} (bar: 80%) -> {'PASS' if worst >= 0.8 else 'FAIL'}")
    out = args.json or (
        os.path.join(os.environ["OUT"], "train_throughput.json") if os.environ.get("OUT") else None
    )
    if out and is_main:
        Path(out).write_text(
            json.dumps({"device": name, "torch": torch.__version__, "results": results}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
