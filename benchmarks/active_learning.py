"""Active learning vs random on the demo digits with a simulated noisy crowd (CPU, a few minutes).

    python benchmarks/active_learning.py                     # 9 strategies x 5 seeds, target 85 %
    python benchmarks/active_learning.py --seeds 3 --target 0.92 --batch 20

Per seed: the 1,797 digits are split into a fixed test set (30 %, true labels) and a pool. Every pool
item has 3 annotations planned up front by ``core.labelstudio.crowd.plan_crowd`` from 5 labelers with accuracy
0.7 (30 % noise spread over the other classes); an item's annotations are revealed when a strategy
sends it to labeling, and the training labels are the Dawid-Skene consensus of what has been revealed
(``core.consensus.aggregate``). The model is the project's pre-label baseline (``core.training.baseline``:
logistic regression on pixels), refitted after every batch. Strategies: ``core.training.active_learning``
(least confidence, margin, entropy, k-center greedy on standardised pixels, hybrid) against random, and the live
queue's own selection (``core.labelstudio.selection.order_regular``, what ``labeling_tasks`` runs) as
``queue:diversity`` and ``queue:hybrid`` (k-center on each digit's 64-bit perceptual hash, as the queue reads it
from the store) and ``queue:committee`` (the disagreement of the newest 5 refitted baselines' predictions: in the
pipeline every refitted baseline pre-labels the waiting items, and the queue's committee is those versions).
Printed: labeled items needed to first reach the target test accuracy (mean +- sd over seeds; runs
that never reach it within the budget count as the budget and are counted), and the mean test
accuracy over the whole learning curve (area under it, divided by its length).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.methods import aggregate  # noqa: E402
from labeling_assets.core.labelstudio.crowd import LabelerSpec, plan_crowd  # noqa: E402
from labeling_assets.core.labelstudio.selection import (  # noqa: E402
    COMMITTEE_SIZE,
    SelectionInputs,
    order_regular,
    phash_embedding,
)
from labeling_assets.core.labelstudio.tasks import Candidate  # noqa: E402
from labeling_assets.core.tasks import task_kind  # noqa: E402
from labeling_assets.core.training import active_learning as al  # noqa: E402
from labeling_assets.core.training.baseline import fit_baseline  # noqa: E402

CLASSES = [str(d) for d in range(10)]
QUEUE_STRATEGIES = ("queue:diversity", "queue:hybrid", "queue:committee")


def phash_embeddings(x: np.ndarray) -> np.ndarray:
    """Each 8x8 digit's perceptual hash (core.dataset.near_duplicates.phash, as ingest stores it) as a 0/1 vector."""
    from PIL import Image

    from labeling_assets.core.dataset.near_duplicates import phash, to_hex

    images = (x.reshape(-1, 8, 8) * 255).astype(np.uint8)
    return np.stack([phash_embedding(to_hex(phash(Image.fromarray(im)))) for im in images])


def queue_pick(strategy: str, k: int, unlabeled: np.ndarray, labeled: list[int], history: list[np.ndarray],
               embeddings: np.ndarray, seed: int) -> np.ndarray:  # fmt: skip
    """Indices into ``unlabeled`` that the live queue's selection takes first (``history``: each refitted model's
    probabilities over ``unlabeled``, newest last)."""
    newest = history[-1]
    cands = [Candidate(str(i), probs=dict(zip(CLASSES, map(float, newest[n]), strict=True)))
             for n, i in enumerate(unlabeled)]  # fmt: skip
    inputs = SelectionInputs(
        embeddings={str(i): embeddings[i] for i in unlabeled},
        queued=embeddings[labeled],
        committees={str(i): [dict(zip(CLASSES, map(float, h[n]), strict=True)) for h in history[-COMMITTEE_SIZE:]]
                    for n, i in enumerate(unlabeled)} if strategy == "queue:committee" else {},
    )  # fmt: skip
    position = {str(i): n for n, i in enumerate(unlabeled)}
    chosen = order_regular(cands, k, strategy.split(":")[1], task_kind("single_label"), np.random.default_rng(seed), inputs)
    return np.array([position[c.item_id] for c, _ in chosen.items], dtype=np.int64)


def crowd_annotations(truth: dict[int, str], seed: int, accuracy: float, overlap: int) -> pd.DataFrame:
    labelers = [LabelerSpec(name=f"a{i}", preset="average", accuracy=accuracy) for i in range(5)]
    plan = plan_crowd(truth, labelers, CLASSES, overlap=overlap, seed=seed)
    return pd.DataFrame(
        {
            "item_id": [a.item_id for a in plan.annotations],
            "labeler_id": [a.labeler for a in plan.annotations],
            "label": [a.label for a in plan.annotations],
        }
    )


def run_one(
    strategy: str,
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch: int,
    budget: int,
    initial: int,
    target: float,
    accuracy: float,
    overlap: int,
    method: str,
) -> tuple[int | None, list[tuple[int, float]], float]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(0.3 * len(y))
    test, pool = order[:n_test], order[n_test:]
    annotations = crowd_annotations({int(i): str(y[i]) for i in pool}, seed, accuracy, overlap)
    by_item = {item: frame for item, frame in annotations.groupby("item_id")}
    scaled = (x - x[pool].mean(axis=0)) / (x[pool].std(axis=0) + 1e-6)
    labeled = list(rng.choice(pool, size=initial, replace=False))
    embeddings = phash_embeddings(x) if strategy.startswith("queue:") else x
    models: list = []  # every refitted baseline (the committee's members)
    curve: list[tuple[int, float]] = []
    reached: int | None = None
    consensus_correct = 0.0
    while True:
        revealed = pd.concat([by_item[int(i)] for i in labeled], ignore_index=True)
        labels = aggregate(revealed, method, classes=CLASSES).set_index("item_id")["label"].astype(str)
        train_labels = [labels[int(i)] for i in labeled]
        consensus_correct = float(
            np.mean([lab == str(y[i]) for lab, i in zip(train_labels, labeled, strict=True)])
        )
        model = fit_baseline(x[labeled], train_labels, CLASSES, seed=seed)
        models.append(model)
        acc = float((model.predict_proba(x[test]).argmax(axis=1) == y[test]).mean())
        curve.append((len(labeled), acc))
        if reached is None and acc >= target:
            reached = len(labeled)
        if reached is not None or len(labeled) >= budget:
            break
        taken = set(labeled)
        unlabeled = np.array([i for i in pool if i not in taken])
        probs = model.predict_proba(x[unlabeled])
        if strategy.startswith("queue:"):
            history = [m.predict_proba(x[unlabeled]) for m in models[-COMMITTEE_SIZE:]]
            picked = queue_pick(strategy, min(batch, budget - len(labeled)), unlabeled, labeled, history, embeddings,
                                seed + len(labeled))  # fmt: skip
            labeled.extend(int(i) for i in unlabeled[picked])
            continue
        picked = al.select(
            strategy,
            min(batch, budget - len(labeled)),
            probs=probs,
            features=scaled[unlabeled],
            labeled_features=scaled[labeled],
            seed=seed + len(labeled),
        )
        labeled.extend(int(i) for i in unlabeled[picked])
    return reached, curve, consensus_correct


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategies", nargs="+", default=[*al.STRATEGIES, *QUEUE_STRATEGIES])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--initial", type=int, default=30)
    parser.add_argument("--budget", type=int, default=700)
    parser.add_argument("--annotator-accuracy", type=float, default=0.7)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--consensus", default="dawid_skene", choices=["majority", "dawid_skene"])
    args = parser.parse_args()

    from sklearn.datasets import load_digits  # bundled with scikit-learn: nothing is downloaded

    digits = load_digits()
    x, y = digits.data.astype(np.float32) / 16.0, digits.target
    print(
        f"demo digits: {len(y)} items, 10 classes; crowd: 5 labelers at accuracy {args.annotator_accuracy}, "
        f"overlap {args.overlap}, {args.consensus} consensus; model: logistic regression on pixels; "
        f"batch {args.batch}, start {args.initial}, budget {args.budget}; target test accuracy {args.target:.0%}; "
        f"{args.seeds} seeds"
    )
    header = f"{'strategy':<18} {'items to target (mean +- sd)':>28} {'reached':>8} {'mean acc over curve':>20} {'consensus acc':>14}"
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    summary = {}
    for strategy in args.strategies:
        needed, aulc, cons = [], [], []
        hits = 0
        for seed in range(args.seeds):
            reached, curve, consensus_correct = run_one(
                strategy,
                seed,
                x,
                y,
                batch=args.batch,
                budget=args.budget,
                initial=args.initial,
                target=args.target,
                accuracy=args.annotator_accuracy,
                overlap=args.overlap,
                method=args.consensus,
            )
            hits += reached is not None
            needed.append(reached if reached is not None else args.budget)
            # Area under the curve up to the point of stopping, extended flat to the budget for comparability.
            sizes = [s for s, _ in curve] + [args.budget]
            accs = [a for _, a in curve]
            aulc.append(float(np.sum(np.diff(sizes) * np.array(accs)) / (args.budget - curve[0][0])))
            cons.append(consensus_correct)
        summary[strategy] = float(np.mean(needed))
        print(
            f"{strategy:<18} {np.mean(needed):>18.0f} +- {np.std(needed, ddof=1) if len(needed) > 1 else 0.0:>5.0f} "
            f"{hits:>5}/{args.seeds} {np.mean(aulc):>20.3f} {np.mean(cons):>14.3f}",
            flush=True,
        )
    if "random" in summary:
        base = summary["random"]
        for strategy, value in summary.items():
            if strategy != "random":
                print(f"{strategy}: {value / base:.2f}x the labels random needs")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
