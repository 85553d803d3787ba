"""Does the box detector learn? The tiny-backbone Faster R-CNN (``core/tasks/boxes/detector.py``) trained on CPU on
demo scenes (``demo_scenes.render_digit_scenes``: digit scans on a 160 px canvas) with their true boxes, then COCO
mAP (``metrics.coco_map``, pycocotools) on held-out scenes.

    python benchmarks/boxes_detector.py                       # 192 training scenes, 64 test scenes, 1500 steps
    python benchmarks/boxes_detector.py --train 64 --steps 300

Ten classes (the digits). One thread: the numbers are for a CPU demo, not for the GPU path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes  # noqa: E402
from labeling_assets.core.tasks.boxes.detector import ImageBoxes, build_detector, detect, train_detector  # noqa: E402
from labeling_assets.core.tasks.boxes.metrics import coco_map  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=192)
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="box-scenes-"))
    render_digit_scenes(folder, n_images=args.train + args.test, seed=args.seed)
    truth = load_scene_truth(folder)
    names = sorted(truth)
    examples = []
    for name in names:
        pixels = np.asarray(Image.open(folder / name).convert("RGB"), dtype=np.float32) / 255.0
        boxes = truth[name]
        examples.append(ImageBoxes(
            torch.from_numpy(pixels).permute(2, 0, 1).contiguous(),
            np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=np.float64).reshape(-1, 4),
            np.array([int(b["label"]) for b in boxes], dtype=np.int64),
        ))  # fmt: skip
    train, test = examples[: args.train], examples[args.train :]
    model = build_detector(len(SCENE_CLASSES), backbone="tiny", image_size=160)
    start = time.perf_counter()
    history = train_detector(model, train, steps=args.steps, batch_size=4, lr=0.01, seed=args.seed)
    seconds = time.perf_counter() - start
    rows = []
    for name, (boxes, labels, scores) in zip(names[args.train :], detect(model, [e.image for e in test]), strict=True):
        rows.extend((name, SCENE_CLASSES[int(k)], *box.tolist(), float(s)) for box, k, s in zip(boxes, labels, scores, strict=True))
    detections = pd.DataFrame(rows, columns=["item_id", "label", "x0", "y0", "x1", "y1", "score"])
    truth_frame = pd.DataFrame(
        [(name, str(b["label"]), b["x0"], b["y0"], b["x1"], b["y1"]) for name in names[args.train :] for b in truth[name]],
        columns=["item_id", "label", "x0", "y0", "x1", "y1"],
    )  # fmt: skip
    score = coco_map(truth_frame, detections, names[args.train :], SCENE_CLASSES, (160.0, 160.0))
    print(f"{args.train} training scenes, {args.steps} steps of 4 in {seconds:.0f} s (one CPU thread); "
          f"loss {np.mean(history[:20]):.2f} -> {np.mean(history[-20:]):.2f}")  # fmt: skip
    print(f"{args.test} test scenes, {score.n_truth} boxes: mAP {score.map:.3f}, AP50 {score.ap50:.3f}, "
          f"AP75 {score.ap75:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
