"""Box consensus quality and speed: ours (labeler-aware EM, ``box_em``) against majority clustering at IoU 0.5
(CVAT/datumaro style), weighted box fusion (``ensemble-boxes``) and the best single labeler, on simulated box
crowds (``core.tasks.boxes.crowd``).

    python benchmarks/boxes.py                          # 4 crowd mixes x 5 seeds, then the timing at 10^5 boxes
    python benchmarks/boxes.py --seeds 2 --items 200 --timing-boxes 0
    python benchmarks/boxes.py --mixes sparse_overlap_2 --gold 0.1 --timing-boxes 0   # ours with 10% gold scenes

Quality is COCO mAP@[.5:.95] (and AP50) of each method's candidate boxes, ranked by its score, against the
simulated truth, by ``pycocotools.COCOeval`` over every scene (empty scenes included). The best single labeler
is the labeler whose own boxes (score 1) score best on the scenes they drew: an oracle choice, and it covers
only those scenes. F1 at IoU 0.5 of each method's decided objects is printed beside mAP. Per-labeler recovery:
Spearman correlation of our estimated recall and localization error with each labeler's recall and mean IoU
measured against the truth.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.tasks.boxes import crowd  # noqa: E402
from labeling_assets.core.tasks.boxes.consensus import box_consensus  # noqa: E402
from labeling_assets.core.tasks.boxes.metrics import coco_map  # noqa: E402
from labeling_assets.core.tasks.boxes.stats import box_labeler_stats  # noqa: E402

CLASSES = ["digit0", "digit1", "digit2", "digit3", "digit4"]
METHODS = ("box_em", "majority", "wbf")


def crowd_mix(name: str, rng: np.random.Generator) -> tuple[list[crowd.BoxLabeler], int]:
    """The pool of labelers and the overlap of a named mix."""
    if name == "all_good":
        return [crowd.good(f"good{n}", rng) for n in range(5)], 3
    if name == "one_spammer":
        return [crowd.good(f"good{n}", rng) for n in range(4)] + [crowd.spammer("spammer")], 3
    if name == "sparse_overlap_2":
        return [crowd.good(f"good{n}", rng) for n in range(2)] + [crowd.average(f"avg{n}", rng) for n in range(3)], 2
    if name == "one_loose":
        return [crowd.good(f"good{n}", rng) for n in range(4)] + [crowd.loose("loose")], 3
    raise ValueError(name)


MIXES = ("all_good", "one_spammer", "sparse_overlap_2", "one_loose")


def f1_at_50(truth: pd.DataFrame, objects: pd.DataFrame, items: list[str]) -> float:
    """F1 at IoU 0.5 of decided objects against the truth (``box_labeler_stats`` with one pseudo-labeler)."""
    votes = pd.DataFrame({"item_id": items, "labeler_id": "m"})
    stats = box_labeler_stats(votes, objects.assign(labeler_id="m"), truth, items)
    p, r = float(stats["precision"].iloc[0]), float(stats["recall"].iloc[0])
    return 0.0 if not p + r or np.isnan(p + r) else 2 * p * r / (p + r)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(pd.Series(a).rank().corr(pd.Series(b).rank()))


def run_once(mix: str, seed: int, n_items: int, gold_share: float = 0.0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    labelers, overlap = crowd_mix(mix, rng)
    scenes = crowd.make_scenes(n_items, CLASSES, rng)
    votes, boxes = crowd.simulate_boxes(scenes, labelers, overlap, CLASSES, rng)
    truth = crowd.truth_boxes(scenes)
    items = sorted(scenes["item_id"].unique())
    # Gold scenes (ours reads their truth) are left out of every score.
    gold_items = sorted(np.random.default_rng([seed, 9]).choice(items, round(gold_share * len(items)), replace=False))
    items = sorted(set(items) - set(gold_items))
    gold = truth[truth["item_id"].isin(gold_items)]
    row: dict[str, float] = {}
    for method in METHODS:
        result = box_consensus(votes, boxes, method, gold=gold, gold_items=gold_items)
        score = coco_map(truth, result.boxes, items, CLASSES, crowd.CANVAS)
        row[f"{method} mAP"] = score.map
        row[f"{method} AP50"] = score.ap50
        row[f"{method} F1@.5"] = f1_at_50(truth, result.objects, items)
        if method == "box_em":
            measured = box_labeler_stats(votes, boxes, truth, items).set_index("labeler_id")
            est = result.labelers.set_index("labeler_id").loc[measured.index]
            row["recall recovery"] = spearman(est["recall"].to_numpy(), measured["recall"].to_numpy())
            row["loc recovery"] = spearman(-est["localization_error"].to_numpy(), measured["mean_iou"].to_numpy())
    best = -1.0
    for labeler_id, mine in votes[votes["item_id"].isin(items)].groupby("labeler_id"):
        own = boxes[boxes["labeler_id"] == labeler_id].assign(score=1.0)
        best = max(best, coco_map(truth, own, sorted(mine["item_id"]), CLASSES, crowd.CANVAS).map)
    row["best single mAP"] = best
    return row


def timing(n_boxes: int) -> None:
    rng = np.random.default_rng(0)
    labelers, overlap = crowd_mix("one_spammer", rng)
    # about 3 objects per scene (10% empty) x 3 labelers + false boxes: ~9.5 boxes per scene
    scenes = crowd.make_scenes(max(n_boxes // 9, 1), CLASSES, rng)
    votes, boxes = crowd.simulate_boxes(scenes, labelers, overlap, CLASSES, rng)
    print(f"\ntiming: {len(boxes)} boxes, {len(votes)} votes, {scenes['item_id'].nunique()} scenes")
    for method in METHODS:
        start = time.perf_counter()
        box_consensus(votes, boxes, method)
        print(f"  {method:9s} {time.perf_counter() - start:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--timing-boxes", type=int, default=100_000)
    parser.add_argument("--gold", type=float, default=0.0, help="share of scenes with gold boxes (ours reads them; "
                        "every method is scored on the other scenes)")
    parser.add_argument("--mixes", nargs="+", default=list(MIXES), choices=MIXES)
    args = parser.parse_args()
    box_consensus(*crowd.simulate_boxes(crowd.make_scenes(2, CLASSES, np.random.default_rng(0)),
                                        [crowd.good("a", np.random.default_rng(0))], 1, CLASSES,
                                        np.random.default_rng(0)), "wbf")  # numba compiles WBF once, untimed  # fmt: skip
    rows = []
    for mix in args.mixes:
        for seed in range(args.seeds):
            rows.append({"mix": mix, "seed": seed, **run_once(mix, seed, args.items, args.gold)})
    frame = pd.DataFrame(rows)
    means = frame.drop(columns="seed").groupby("mix", sort=False).mean()
    cols = ["box_em mAP", "majority mAP", "wbf mAP", "best single mAP", "box_em AP50", "majority AP50", "wbf AP50",
            "box_em F1@.5", "majority F1@.5", "wbf F1@.5", "recall recovery", "loc recovery"]  # fmt: skip
    print(f"mean of {args.seeds} seeds, {args.items} scenes each, classes {len(CLASSES)}, gold share {args.gold}\n")
    print(means[cols].round(3).to_markdown())
    worst = (means["box_em mAP"] - means[["majority mAP", "wbf mAP"]].max(axis=1)).min()
    print(f"\nours - best baseline, mAP, worst mix: {worst:+.3f}")
    per_seed = frame["box_em mAP"] - frame[["majority mAP", "wbf mAP"]].max(axis=1)
    print(f"seeds where ours < best baseline: {int((per_seed < 0).sum())} of {len(frame)}")
    if args.timing_boxes:
        timing(args.timing_boxes)


if __name__ == "__main__":
    main()
