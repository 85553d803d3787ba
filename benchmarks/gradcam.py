"""Grad-CAM: does the map land on planted evidence, and what does the evaluation's grid cost on a CPU?

    python benchmarks/gradcam.py                      # 5 seeds of the planted model, the grid per backbone (minutes)
    python benchmarks/gradcam.py --seeds 0 1 --backbones small_cnn

1. Planted evidence (tests/core/planted_evidence.py): a small CNN trained so that class 1 is decided by a bright
   8x8 patch in the top-left corner of 32x32 noise. Printed per seed: the share of the class-1 map's mass in the
   top-left quadrant (0.25 if spread evenly), min and mean over 16 patched images, and the same share for a model
   trained on the bottom-right corner (the control: it must be low).
2. Cost: ``core.training.explain.explain_test_items`` for 16 items (what ``model_evaluation`` does by default) on
   the CPU, per backbone at its usual size (small_cnn 32 px, the others 224 px; untrained weights: the cost does
   not depend on them), median of 3 runs after a warm-up, plus the grid PNG's size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.training.explain import explain_test_items  # noqa: E402
from labeling_assets.core.training.gradcam import class_activation_maps, mass_share  # noqa: E402
from labeling_assets.core.training.models import Classifier, build_backbone  # noqa: E402
from tests.core.planted_evidence import TOP_LEFT, planted, trained  # noqa: E402

SIZES = {"small_cnn": 32, "resnet18": 224, "efficientnet_b0": 224, "mobilenet_v3_small": 224}


def planted_shares(seed: int, corner: str) -> list[float]:
    model = trained(corner, seed=seed)
    images, labels = planted(32, corner, seed=100 + seed)
    maps = class_activation_maps(model, images[labels == 1], [1] * int((labels == 1).sum()))
    return [mass_share(m, *TOP_LEFT) for m in maps]


def grid_cost(backbone: str, items: int, folder: Path) -> tuple[float, int]:
    size = SIZES[backbone]
    torch.manual_seed(0)
    model = Classifier(build_backbone(backbone, num_classes=10, in_channels=3), [0.5] * 3, [0.25] * 3).eval()
    rng = np.random.default_rng(0)
    paths = []
    for n in range(4 * items):
        path = folder / f"{backbone}_{n}.png"
        Image.fromarray(rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    answers = np.arange(len(paths)) % 10
    probs = rng.dirichlet(np.ones(10), size=len(paths))

    def once() -> int:
        explained = explain_test_items(model, image_size=size, channels=3, classes=[str(c) for c in range(10)],
                                       item_ids=[f"i{n}" for n in range(len(paths))], paths=paths, answers=answers,
                                       probs=probs, thresholds=None, max_items=items)  # fmt: skip
        return len(explained.png)

    once()  # warm-up: first-call allocations
    times = []
    for _ in range(3):
        start = time.perf_counter()
        png_bytes = once()
        times.append(time.perf_counter() - start)
    return statistics.median(times), png_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--backbones", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--items", type=int, default=16, help="items in the grid (model_evaluation's default 16)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("planted evidence: share of the class-1 map in the top-left quadrant (16 patched images)")
    print("seed | patch top-left: min, mean | control (patch bottom-right): max, mean")
    for seed in args.seeds:
        own, other = planted_shares(seed, "top_left"), planted_shares(seed, "bottom_right")
        print(f"{seed} | {min(own):.3f}, {statistics.mean(own):.3f} | {max(other):.3f}, {statistics.mean(other):.3f}")
    print(f"\ncost of the evaluation's grid ({args.items} items, CPU, {torch.get_num_threads()} threads)")
    print("backbone | size | seconds (median of 3) | grid PNG bytes")
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.backbones:
            seconds, png_bytes = grid_cost(backbone, args.items, Path(tmp))
            print(f"{backbone} | {SIZES[backbone]} | {seconds:.2f} | {png_bytes:,}")


if __name__ == "__main__":
    main()
