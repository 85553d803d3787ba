"""Does the box detector learn, and which training weight of the crowd's boxes helps? The tiny-backbone Faster R-CNN
(``core/tasks/boxes/detector.py``) trained on CPU on demo scenes (``demo_scenes.render_digit_scenes``: digit scans on
a 160 px canvas), then COCO mAP (``metrics.coco_map``, pycocotools) on held-out scenes against their true boxes.

    python benchmarks/boxes_detector.py                       # on the true boxes: 192 training scenes, 1500 steps
    python benchmarks/boxes_detector.py --train 64 --steps 300
    python benchmarks/boxes_detector.py --labels crowd --train 64 --test 48 --steps 250   # every box_weighting

``--labels crowd``: the training scenes are labeled as the demo's box crowd labels them (``crowd.default_box_crowd``:
2 good, 2 average labelers and a spammer, 3 per scene), their consensus is ``box_em``'s (each box with its posterior,
stored as the consensus answer keeps it), and the same detector is trained once per ``box_weighting`` of the trainer
(``trainer.BOX_WEIGHTINGS``; the same seed, steps and images each time), all scored on the same test scenes.

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

from labeling_assets.core.tasks.boxes import crowd  # noqa: E402
from labeling_assets.core.tasks.boxes.consensus import box_consensus  # noqa: E402
from labeling_assets.core.tasks.boxes.demo_scenes import SCENE_CLASSES, load_scene_truth, render_digit_scenes  # noqa: E402
from labeling_assets.core.tasks.boxes.detector import ImageBoxes, build_detector, detect, train_detector  # noqa: E402
from labeling_assets.core.tasks.boxes.gold import gold_answer  # noqa: E402
from labeling_assets.core.tasks.boxes.metrics import coco_map  # noqa: E402
from labeling_assets.core.tasks.boxes.trainer import BOX_WEIGHTINGS, DEFAULT_SETTINGS, training_examples  # noqa: E402

CANVAS = 160


def _truth_example(path: Path, boxes: list[dict]) -> ImageBoxes:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return ImageBoxes(
        torch.from_numpy(pixels).permute(2, 0, 1).contiguous(),
        np.array([[b["x0"], b["y0"], b["x1"], b["y1"]] for b in boxes], dtype=np.float64).reshape(-1, 4),
        np.array([int(b["label"]) for b in boxes], dtype=np.int64),
    )


def test_map(model: torch.nn.Module, folder: Path, names: list[str], truth: dict[str, list[dict]]) -> tuple[float, float, int]:
    """(mAP@[.5:.95], AP50, true boxes) of ``model`` on the scenes ``names``."""
    images = [_truth_example(folder / name, truth[name]).image for name in names]
    rows = []
    for name, (boxes, labels, scores) in zip(names, detect(model, images), strict=True):
        rows.extend((name, SCENE_CLASSES[int(k)], *box.tolist(), float(s)) for box, k, s in zip(boxes, labels, scores, strict=True))
    detections = pd.DataFrame(rows, columns=["item_id", "label", "x0", "y0", "x1", "y1", "score"])
    truth_frame = pd.DataFrame(
        [(name, str(b["label"]), b["x0"], b["y0"], b["x1"], b["y1"]) for name in names for b in truth[name]],
        columns=["item_id", "label", "x0", "y0", "x1", "y1"],
    )  # fmt: skip
    score = coco_map(truth_frame, detections, names, SCENE_CLASSES, (float(CANVAS), float(CANVAS)))
    return score.map, score.ap50, score.n_truth


def crowd_rows(folder: Path, names: list[str], truth: dict[str, list[dict]], seed: int) -> pd.DataFrame:
    """The scenes ``names`` as trainer rows (``uri, label, confidence``) whose label is the demo crowd's box_em
    consensus, each box with its posterior; prints how good that consensus is against the truth."""
    members = crowd.default_box_crowd(5, seed=seed)
    rng = np.random.default_rng([seed, 4])
    votes, boxes = crowd.simulate_boxes(crowd.scene_truth({n: truth[n] for n in names}), [m.labeler for m in members],
                                        3, SCENE_CLASSES, rng, (float(CANVAS), float(CANVAS)))  # fmt: skip
    run = box_consensus(votes, boxes, "auto")
    objects = run.objects
    by_item = {str(k): g for k, g in objects.groupby(objects["item_id"].astype(str))}
    rows = []
    for item, confidence in zip(run.items["item_id"].astype(str), run.items["confidence"], strict=True):
        mine = by_item.get(item, objects.iloc[:0])
        found = mine[["label", "x0", "y0", "x1", "y1", "score"]].rename(columns={"score": "confidence"})
        rows.append((str(folder / item), gold_answer(found.to_dict("records"), CANVAS, CANVAS), float(confidence)))
    truth_frame = pd.DataFrame([(n, str(b["label"]), b["x0"], b["y0"], b["x1"], b["y1"]) for n in names for b in truth[n]],
                               columns=["item_id", "label", "x0", "y0", "x1", "y1"])  # fmt: skip
    quality = coco_map(truth_frame, objects, names, SCENE_CLASSES, (float(CANVAS), float(CANVAS)))
    scores = objects["score"].to_numpy()
    print(f"crowd consensus of {len(names)} training scenes ({len(votes)} answers): {len(objects)} boxes for "
          f"{quality.n_truth} true ones, mAP {quality.map:.3f} against the truth; box posterior mean "
          f"{scores.mean():.3f}, {(scores < 0.9).sum()} boxes under 0.9")  # fmt: skip
    return pd.DataFrame(rows, columns=["uri", "label", "confidence"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=192)
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", choices=("truth", "crowd"), default="truth")
    parser.add_argument("--weighting", nargs="+", choices=BOX_WEIGHTINGS, default=list(BOX_WEIGHTINGS),
                        help="--labels crowd: the box_weighting settings to compare (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="box-scenes-"))
    render_digit_scenes(folder, n_images=args.train + args.test, canvas=CANVAS, seed=args.seed)
    truth = load_scene_truth(folder)
    names = sorted(truth)
    train_names, test_names = names[: args.train], names[args.train :]
    if args.labels == "truth":
        runs = {"truth": [_truth_example(folder / n, truth[n]) for n in train_names]}
        sample = {"truth": False}
    else:
        rows = crowd_rows(folder, train_names, truth, args.seed)
        cut = float(DEFAULT_SETTINGS["min_box_confidence"])
        runs = {w: training_examples(rows, SCENE_CLASSES, print, weighting=w, min_box_confidence=cut) for w in args.weighting}
        sample = {w: w == "sample_mean_box" for w in args.weighting}
    for name, examples in runs.items():
        torch.manual_seed(args.seed)
        model = build_detector(len(SCENE_CLASSES), backbone="tiny", image_size=CANVAS)
        start = time.perf_counter()
        history = train_detector(model, examples, steps=args.steps, batch_size=4, lr=0.01, seed=args.seed,
                                 sample_by_weight=sample[name])  # fmt: skip
        seconds = time.perf_counter() - start
        found, ap50, n_truth = test_map(model, folder, test_names, truth)
        print(f"{name}: {args.train} training scenes, {args.steps} steps of 4 in {seconds:.0f} s (one CPU thread); "
              f"loss {np.mean(history[:20]):.2f} -> {np.mean(history[-20:]):.2f}; {args.test} test scenes, "
              f"{n_truth} boxes: mAP {found:.3f}, AP50 {ap50:.3f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
