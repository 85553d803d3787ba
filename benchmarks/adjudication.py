"""Adjudication: consensus accuracy before and after an expert settles the k least confident items.

    python benchmarks/adjudication.py                      # 2000 items, 10 classes, overlap 3, 5 seeds
    python benchmarks/adjudication.py --items 5000 --seeds 10 --expert-accuracy 0.95

The simulated crowd is ``core.labelstudio.crowd.default_crowd(8)`` (expert, average x2, noisy, spammer, biased,
...), planned by ``plan_crowd`` (each item gets ``overlap`` distinct labelers). Consensus is our Dawid-Skene
(``core.consensus.methods.aggregate``); the k = 1 %, 5 %, 10 % items with the lowest consensus confidence go to a
simulated expert right with probability ``--expert-accuracy`` (else a uniformly wrong class), and their labels
are replaced as ``apply_adjudications`` does in the pipeline.

"Labels saved per point" compares two ways to buy accuracy: k expert labels on the least confident items, or
one more crowd label on every item (overlap + 1, re-aggregated). Crowd labels per accuracy point minus expert
labels per point is what adjudication saves, per point of accuracy gained (an expert label is dearer than a
crowd label; divide by their price ratio for the cost saved).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.adjudication import apply_adjudications, least_confident  # noqa: E402
from labeling_assets.core.consensus.methods import aggregate  # noqa: E402
from labeling_assets.core.labelstudio.crowd import default_crowd, plan_crowd  # noqa: E402

CLASSES = [f"c{k}" for k in range(10)]
SHARES = (0.01, 0.05, 0.10)


def crowd_votes(n_items: int, overlap: int, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    rng = np.random.default_rng(seed)
    truth = {f"i{n:06d}": CLASSES[int(c)] for n, c in enumerate(rng.integers(0, len(CLASSES), n_items))}
    plan = plan_crowd(truth, default_crowd(8), CLASSES, overlap=overlap, seed=seed)
    votes = pd.DataFrame([{"item_id": a.item_id, "labeler_id": a.labeler, "label": a.label} for a in plan.annotations])
    return votes, truth


def accuracy(labels: pd.DataFrame, truth: dict[str, str]) -> float:
    return float((labels["label"].to_numpy() == labels["item_id"].map(truth).to_numpy()).mean())


def expert(items: list[str], truth: dict[str, str], right: float, rng: np.random.Generator) -> pd.Series:
    answers = {}
    for item in items:
        if rng.random() < right:
            answers[item] = truth[item]
        else:
            answers[item] = str(rng.choice([c for c in CLASSES if c != truth[item]]))
    return pd.Series(answers, dtype=object)


def run(n_items: int, overlap: int, seed: int, expert_accuracy: float) -> dict[str, float]:
    votes, truth = crowd_votes(n_items, overlap, seed)
    labels = aggregate(votes, "dawid_skene", classes=CLASSES)
    out = {"before": accuracy(labels, truth)}
    rng = np.random.default_rng(seed + 1000)
    for share in SHARES:
        k = max(1, round(share * n_items))
        chosen = least_confident(labels, k)
        crowd, adjudicated = apply_adjudications(labels, votes, expert(chosen, truth, expert_accuracy, rng))
        out[f"after {share:.0%}"] = accuracy(pd.concat([crowd, adjudicated], ignore_index=True), truth)
    more, _ = crowd_votes(n_items, overlap + 1, seed)
    out["overlap+1"] = accuracy(aggregate(more, "dawid_skene", classes=CLASSES), truth)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--expert-accuracy", type=float, default=0.98)
    args = parser.parse_args()
    rows = [run(args.items, args.overlap, seed, args.expert_accuracy) for seed in range(args.seeds)]
    mean = pd.DataFrame(rows).mean()
    before = mean["before"]
    print(f"{args.items} items, {len(CLASSES)} classes, overlap {args.overlap}, crowd default_crowd(8), "
          f"Dawid-Skene, expert right {args.expert_accuracy:.0%}, mean of {args.seeds} seeds")  # fmt: skip
    gain_crowd = (mean["overlap+1"] - before) * 100
    crowd_per_point = args.items / gain_crowd if gain_crowd > 0 else float("inf")
    print(f"{'adjudicated':>12} {'expert labels':>14} {'accuracy':>9} {'gain (pts)':>10} {'expert labels/pt':>17} "
          f"{'crowd labels/pt (overlap+1)':>28} {'labels saved/pt':>16}")  # fmt: skip
    print(f"{'none':>12} {0:>14} {before:>9.4f}")
    for share in SHARES:
        k = max(1, round(share * args.items))
        gain = (mean[f"after {share:.0%}"] - before) * 100
        per_point = k / gain if gain > 0 else float("inf")
        print(f"{share:>12.0%} {k:>14} {mean[f'after {share:.0%}']:>9.4f} {gain:>10.2f} {per_point:>17.1f} "
              f"{crowd_per_point:>28.1f} {crowd_per_point - per_point:>16.1f}")  # fmt: skip
    print(f"overlap {args.overlap + 1} instead (+{args.items} crowd labels): accuracy {mean['overlap+1']:.4f}, "
          f"gain {gain_crowd:.2f} pts")  # fmt: skip


if __name__ == "__main__":
    main()
