"""Issue 14: where ``auto`` and majority vote part ways on the real crowds, and whether tempering helps.

    python benchmarks/consensus_tempering.py                 # a few seconds
    python benchmarks/consensus_tempering.py --data /path/to/crowds --taus 1 0.5

1. Disagreements: on the items with truth, the items where ``aggregate(method="auto")`` and
   ``aggregate(method="majority")`` give different labels, by the majority's margin (top vote share minus
   the runner-up's), and how many of them each method gets right.
2. Tempering (tried, not adopted): Dawid-Skene with the pooled prior (strength 3, as ``dawid_skene_pooled``)
   fitted as usual, then each item decided by ``tau * log P(answers | class) + log P(class)``: tau < 1 trusts
   the labelers' answers less against the class prior (tau = 1 is the fit's own decision). Accuracy % on the
   truth items of each real crowd, and on two skewed simulated crowds (``real_crowd.skewed_crowd``: 85/15
   binary and 70/10/10/10, one-coin prior as ``dawid_skene``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_crowd import DEFAULT_DATA, em, load, skewed_crowd  # noqa: E402

from labeling_assets.core.consensus.encoding import Encoded, encode  # noqa: E402
from labeling_assets.core.consensus.methods import aggregate  # noqa: E402

MARGINS = [(0.0, 0.2), (0.2, 0.4), (0.4, 1.01)]


def tempered_decision(enc: Encoded, post: np.ndarray, conf: np.ndarray, tau: float) -> np.ndarray:
    n, m, k = enc.n_items, enc.n_labelers, enc.n_classes
    answers = sp.csr_matrix((np.ones(len(enc.item)), (enc.item, enc.labeler * k + enc.label)), shape=(n, m * k))
    log_lik = np.asarray(answers @ np.log(conf).transpose(0, 2, 1).reshape(m * k, k))
    return np.asarray((tau * log_lik + np.log(post.sum(0) / n)).argmax(1))


def disagreements(name: str, frame: pd.DataFrame, truth: pd.Series) -> None:
    auto = aggregate(frame, "auto").set_index("item_id")["label"].reindex(truth.index)
    majority = aggregate(frame, "majority").set_index("item_id")["label"].reindex(truth.index)
    counts = frame.groupby(["item_id", "label"]).size().unstack(fill_value=0).reindex(truth.index).fillna(0)
    top = np.sort(counts.to_numpy(), axis=1)[:, ::-1]
    margin = (top[:, 0] - (top[:, 1] if top.shape[1] > 1 else 0)) / np.maximum(top.sum(1), 1)
    differ = (auto != majority).to_numpy()
    print(f"{name}: auto and majority differ on {differ.sum()} of {len(truth)} truth items")
    for lo, hi in MARGINS:
        where = differ & (margin >= lo) & (margin < hi)
        print(f"  majority margin [{lo:.1f}, {min(hi, 1.0):.1f}]: {where.sum()} items; majority right "
              f"{int((majority[where] == truth[where]).sum())}, auto right {int((auto[where] == truth[where]).sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of crowds (default {DEFAULT_DATA})")
    parser.add_argument("--taus", type=float, nargs="+", default=[1.0, 0.7, 0.5, 0.3])
    args = parser.parse_args()
    rows = []
    for folder in sorted(p for p in args.data.iterdir() if (p / "labels.txt").exists()):
        frame, truth = load(folder)
        disagreements(folder.name, frame, truth)
        enc = encode(frame, None)
        post, conf = em(enc, prior="pooled", strength=3.0)
        position = pd.Index(enc.item_ids).get_indexer(truth.index)
        known = position >= 0
        true_codes = np.array([enc.classes.index(x) for x in truth.to_numpy()[known]])
        rows.append({"crowd": folder.name, **{f"tau {t:g}": 100 * float(
            (tempered_decision(enc, post, conf, t)[position[known]] == true_codes).mean()) for t in args.taus}})
    for seed, (k, major) in enumerate([(2, 0.85), (4, 0.7)]):
        enc, truth_codes = skewed_crowd(seed, k, major)
        post, conf = em(enc, prior="one_coin", strength=10.0)
        rows.append({"crowd": f"simulated, {k} classes, {major:.0%} one class", **{
            f"tau {t:g}": 100 * float((tempered_decision(enc, post, conf, t) == truth_codes).mean()) for t in args.taus}})
    print("\naccuracy % of the tempered decision (tau 1 = the fit's own):")
    print(pd.DataFrame(rows).round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
