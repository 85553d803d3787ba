"""Split assignment at scale: seconds and worst class-proportion deviation for N items, with and without
group keys, first assignment and an incremental re-run (10% new items on top of frozen ones).

    python benchmarks/splits.py                   # 10^4, 10^5, 10^6 items, 10 imbalanced classes
    python benchmarks/splits.py --sizes 100000

Synthetic labels (a geometric class distribution, largest/smallest about 50) and groups of ~5 items.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from labeling_assets.core.dataset.split_checks import proportion_deviations
from labeling_assets.core.dataset.splits import assign_splits, manifest_version


def make_items(n: int, *, groups: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = 0.65 ** np.arange(10)
    frame = pd.DataFrame(
        {
            "item_id": np.char.add("h", np.arange(n).astype(str)).astype(object),
            "label": rng.choice([f"class_{k}" for k in range(10)], size=n, p=p / p.sum()),
        }
    )
    if groups:
        frame["group_key"] = rng.integers(0, max(n // 5, 1), size=n).astype(str)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"{'items':>9} {'groups':>6} {'assign_s':>9} {'max_dev':>8} {'rerun_s':>8} {'rerun_dev':>9} {'moved':>5} {'hash_s':>6}"
    )
    for n in args.sizes:
        for groups in (False, True):
            frame = make_items(n, groups=groups, seed=args.seed)
            old = frame.iloc[: int(n * 0.9)]
            started = time.perf_counter()
            first = assign_splits(old, seed=args.seed)
            assign_s = time.perf_counter() - started
            dev = proportion_deviations(first.frame)["deviation"].max()
            existing = first.frame.set_index("item_id")["split"]
            started = time.perf_counter()
            second = assign_splits(frame, existing=existing, seed=args.seed + 1)
            rerun_s = time.perf_counter() - started
            rerun_dev = proportion_deviations(second.frame)["deviation"].max()
            moved = int(
                (second.frame.set_index("item_id")["split"].reindex(existing.index) != existing).sum()
            )
            started = time.perf_counter()
            manifest_version(second.frame)
            hash_s = time.perf_counter() - started
            print(
                f"{n:>9} {'yes' if groups else 'no':>6} {assign_s:>9.2f} {dev:>8.4f} {rerun_s:>8.2f} "
                f"{rerun_dev:>9.4f} {moved:>5} {hash_s:>6.2f}"
            )


if __name__ == "__main__":
    main()
