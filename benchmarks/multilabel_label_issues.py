"""Label issues for label sets: which cleanlab filter flags the planted wrong sets with the fewest flags?

    python benchmarks/multilabel_label_issues.py                 # 1,000 demo grids, 5% and 15% planted, ~1 min
    python benchmarks/multilabel_label_issues.py --rates 0.1 --seeds 0 1 2 --grids 1000

The data: the multi-label demo's 2x2 grids of scikit-learn digit scans (``core.ingest.demo_data``), with their
true sets as the "consensus", except a planted share of items whose set has one class flipped (added or removed).
Out-of-sample P(class present) come from ``core.consensus.set_label_issues.cross_val_set_pred_probs`` on the
16x16 pixels (what the ``label_issues`` asset uses); each filter of cleanlab's multi-label
``find_label_issues`` then flags items. Printed per planted rate and filter (mean over seeds): items flagged,
recall of the planted items and precision of the flags (an expert reviews every flag: precision is their time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.label_issues import image_features  # noqa: E402
from labeling_assets.core.consensus.set_label_issues import cross_val_set_pred_probs  # noqa: E402
from labeling_assets.core.ingest.demo_data import GRID_CLASSES, load_truth_sets, render_digit_grids  # noqa: E402
from labeling_assets.core.label_sets import to_indicator  # noqa: E402

FILTERS = ["prune_by_noise_rate", "confident_learning", "low_self_confidence", "low_normalized_margin",
           "predicted_neq_given"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grids", type=int, default=1000, help="demo grids to render (default 1000)")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.15], help="planted wrong-set shares")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="planting seeds (default 0 1 2)")
    args = parser.parse_args()
    from cleanlab.multilabel_classification.filter import find_label_issues

    warnings.filterwarnings("ignore", module="cleanlab")
    classes = list(GRID_CLASSES)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        render_digit_grids(folder, n_images=args.grids)
        truth = load_truth_sets(folder)
        names = sorted(truth)
        features = image_features([str(folder / n) for n in names], size=16)
    rows = []
    for rate in args.rates:
        for seed in args.seeds:
            rng = np.random.default_rng([seed, int(rate * 1000)])
            planted = set(rng.choice(len(names), round(rate * len(names)), replace=False).tolist())
            given = [sorted(set(truth[n]) ^ {classes[rng.integers(len(classes))]}) if i in planted else truth[n]
                     for i, n in enumerate(names)]  # fmt: skip
            indicator = to_indicator(given, classes)
            probs = cross_val_set_pred_probs(features, indicator)
            labels = [list(np.flatnonzero(r)) for r in indicator]
            for name in FILTERS:
                flagged = set(np.flatnonzero(find_label_issues(labels, probs, filter_by=name, n_jobs=1)).tolist())
                hits = len(flagged & planted)
                rows.append({"planted": f"{rate:.0%}", "filter": name, "flagged": len(flagged),
                             "recall": hits / len(planted), "precision": hits / max(len(flagged), 1)})  # fmt: skip
    table = pd.DataFrame(rows).groupby(["planted", "filter"], sort=False).mean().round(3)
    print(f"{args.grids} grids, seeds {args.seeds}; mean over seeds:")
    print(table.to_markdown())


if __name__ == "__main__":
    main()
