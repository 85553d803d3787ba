"""Multi-label consensus: per-class F1 of each set method against the true sets, on simulated set crowds.

    python benchmarks/multilabel_consensus.py                 # 3 crowds x 5 seeds, then timings
    python benchmarks/multilabel_consensus.py --seeds 10 --items 2000 --votes 100000 1000000

Truth: 10 classes, each present independently with prevalence 0.25 x 0.75^k (0.25 down to 0.019: most items
have none or one finding, the last classes are rare). Answers come from the project's crowd simulator
(``core.labelstudio.crowd.plan_set_crowd``: per-labeler per-class miss and false-alarm rates, presets expert
0.05/0.01, average 0.15/0.04, lazy 0.50/0.01, spammer 0.80/0.20), ``overlap`` labelers per item:

- ``demo``: the demo crowd of 5 (expert, average, lazy, average, spammer), everyone labels ~60% of items;
- ``sparse``: 60 labelers cycling the same presets, ~75 items each (per-labeler rates rest on few findings);
- ``lazy-heavy``: one expert, three lazy labelers and one spammer (majority loses most findings).

Score: per-class F1 of the consensus sets (default threshold 0.5) against the true sets, macro = mean over
classes (``core.consensus.multilabel_quality.per_class_f1``); "vs majority" is the paired mean difference
over seeds with its standard error. Timing: one ``aggregate_sets`` call (encoding included) on the sparse crowd, with its EM iterations (the most
over classes for per-class Dawid-Skene). Votes with no signal at all (random sets) make EM run to its cap of
100 iterations: about 5x slower.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.multilabel import SET_METHODS, aggregate_sets  # noqa: E402
from labeling_assets.core.consensus.multilabel_quality import per_class_f1  # noqa: E402
from labeling_assets.core.labelstudio.crowd import SetLabelerSpec, default_set_crowd, plan_set_crowd  # noqa: E402

CLASSES = [f"c{k}" for k in range(10)]
PREVALENCE = 0.25 * 0.75 ** np.arange(len(CLASSES))
METHODS = [m for m in SET_METHODS if m != "auto"]


def crowds() -> dict[str, list[SetLabelerSpec]]:
    return {
        "demo": default_set_crowd(5),
        "sparse": default_set_crowd(60),
        "lazy-heavy": [
            SetLabelerSpec("expert", "expert"),
            *(SetLabelerSpec(f"lazy_{i}", "lazy") for i in range(3)),
            SetLabelerSpec("spammer", "spammer"),
        ],
    }


def simulate(
    crowd: list[SetLabelerSpec], n_items: int, seed: int
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    rng = np.random.default_rng(seed)
    present = rng.random((n_items, len(CLASSES))) < PREVALENCE
    truth = {i: [CLASSES[k] for k in np.flatnonzero(row)] for i, row in enumerate(present)}
    plan = plan_set_crowd(truth, crowd, CLASSES, overlap=3, seed=seed)
    votes = pd.DataFrame(
        [(a.item_id, a.labeler, list(a.labels)) for a in plan.annotations],
        columns=["item_id", "labeler_id", "label"],
    )
    return votes, truth


def accuracy_table(n_items: int, seeds: int) -> None:
    print(
        f"per-class consensus F1 vs true sets: {n_items} items, 10 classes, overlap 3, {seeds} seeds (mean)"
    )
    print(
        f"{'crowd':<11} {'method':<19} {'macro F1':>9} {'micro F1':>9} {'rare-5 F1':>10} {'vs majority (macro)':>22}"
    )
    for name, crowd in crowds().items():
        scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in METHODS}
        for seed in range(seeds):
            votes, truth = simulate(crowd, n_items, seed)
            for method in METHODS:
                labels = aggregate_sets(votes, method, classes=CLASSES).labels
                frame = per_class_f1(
                    dict(zip(labels["item_id"], labels["label"], strict=True)), truth, CLASSES
                )
                frame = frame.set_index("class")
                rare = float(frame.loc[CLASSES[5:], "f1"].mean())
                scores[method].append(
                    (float(frame.loc["macro", "f1"]), float(frame.loc["micro", "f1"]), rare)
                )
        base = np.asarray([s[0] for s in scores["majority"]])
        for method in METHODS:
            values = np.asarray(scores[method])
            diff = values[:, 0] - base
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            shown = "" if method == "majority" else f"{diff.mean():+.3f} ± {se:.3f}"
            print(
                f"{name:<11} {method:<19} {values[:, 0].mean():>9.3f} {values[:, 1].mean():>9.3f} "
                f"{values[:, 2].mean():>10.3f} {shown:>22}"
            )


def timings(sizes: list[int]) -> None:
    print("\nseconds per aggregate_sets call (the sparse crowd of 60 labelers, overlap 3, encoding included)")
    for n_votes in sizes:
        votes, _ = simulate(default_set_crowd(60), n_votes // 3, seed=0)
        row = []
        for method in METHODS:
            started = time.perf_counter()
            result = aggregate_sets(votes, method, classes=CLASSES)
            its = f", {result.iterations} it" if result.iterations else ""
            row.append(f"{method} {time.perf_counter() - started:.2f}{its}")
        print(f"{len(votes):>9} votes: " + "; ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--votes", type=int, nargs="*", default=[100_000])
    args = parser.parse_args()
    accuracy_table(args.items, args.seeds)
    timings(args.votes)


if __name__ == "__main__":
    main()
