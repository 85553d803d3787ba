"""Multi-label split assignment at scale: seconds and the largest per-label prevalence deviation for N items
(iterative stratification vs a random draw of the same units), with and without group keys, first assignment
and an incremental re-run (10% new items on top of frozen ones).

    python benchmarks/multilabel_splits.py                  # 10^4, 10^5, 10^6 items, 14 labels
    python benchmarks/multilabel_splits.py --sizes 100000

Synthetic ChestX-ray14-like sets: 14 labels with prevalences from 20% down to 0.2% (geometric), drawn
independently, so about half the items carry none; groups of ~3 items. The per-class consensus and training
comparisons of issue 16 are in ``benchmarks/multilabel.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from labeling_assets.core.dataset.iterative_stratification import (
    assign_label_set_splits,
    indicator_of,
    manifest_version,
    max_proportion_deviation,
)
from labeling_assets.core.dataset.splits import SPLITS

CLASSES = [f"finding_{k:02d}" for k in range(14)]


def make_items(n: int, *, groups: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.random((n, len(CLASSES))) < np.geomspace(0.2, 0.002, len(CLASSES))
    names = np.array(CLASSES, dtype=object)
    frame = pd.DataFrame(
        {
            "item_id": np.char.add("h", np.arange(n).astype(str)).astype(object),
            "label": [names[row].tolist() for row in y],
        }
    )
    if groups:
        frame["group_key"] = rng.integers(0, max(n // 3, 1), size=n).astype(str)
    return frame


def random_units(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """The baseline: each unit (group, or item without one) drawn into a split with the 70/15/15 ratios."""
    keys = frame["group_key"].fillna(frame["item_id"]) if "group_key" in frame else frame["item_id"]
    _, unit_of = np.unique(keys.to_numpy(dtype=str), return_inverse=True)
    return np.random.default_rng(seed).choice(3, size=unit_of.max() + 1, p=[0.7, 0.15, 0.15])[unit_of]


def deviation(frame: pd.DataFrame, codes: np.ndarray | None = None) -> float:
    if codes is None:
        codes = pd.Index(list(SPLITS)).get_indexer(frame["split"])
    return max_proportion_deviation(indicator_of(frame, CLASSES), codes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"{'items':>9} {'groups':>6} {'assign_s':>9} {'max_dev':>8} {'random_dev':>10} {'rerun_s':>8} "
        f"{'rerun_dev':>9} {'moved':>5} {'hash_s':>6}"
    )
    for n in args.sizes:
        for groups in (False, True):
            frame = make_items(n, groups=groups, seed=args.seed)
            old = frame.iloc[: int(n * 0.9)]
            started = time.perf_counter()
            first = assign_label_set_splits(old, CLASSES, seed=args.seed)
            assign_s = time.perf_counter() - started
            dev = deviation(first.frame)
            baseline = deviation(first.frame, random_units(old, args.seed))
            existing = first.frame.set_index("item_id")["split"]
            started = time.perf_counter()
            second = assign_label_set_splits(frame, CLASSES, existing=existing, seed=args.seed + 1)
            rerun_s = time.perf_counter() - started
            rerun_dev = deviation(second.frame)
            moved = int(
                (second.frame.set_index("item_id")["split"].reindex(existing.index) != existing).sum()
            )
            started = time.perf_counter()
            manifest_version(second.frame)
            hash_s = time.perf_counter() - started
            print(
                f"{n:>9} {'yes' if groups else 'no':>6} {assign_s:>9.2f} {dev:>8.4f} {baseline:>10.4f} "
                f"{rerun_s:>8.2f} {rerun_dev:>9.4f} {moved:>5} {hash_s:>6.2f}"
            )


if __name__ == "__main__":
    main()
