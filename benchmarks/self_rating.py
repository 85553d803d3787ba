"""Does a labeler's own confidence (a 1-5 rating) predict being right, and would weighting votes by it help?

    python benchmarks/self_rating.py                 # ~10 s on 2 cores (--seeds 10: ~15 s)
    python benchmarks/self_rating.py --seeds 10 --items 2000

On the simulated crowd (``core/fields/crowd.py``: its model of self-ratings is an assumption, stated there and in
docs/answer_fields.md; calibrated labelers rate right answers high, overconfident ones rate everything 4-5):

1. Calibration per rating style and overall: accuracy per rating level vs the truth, the ECE against r / 5, and
   Spearman's rank correlation of the rating with being right.
2. Consensus accuracy (% of items whose consensus equals the truth; mean and min-max over ``--seeds``) of the
   majority vote, the rating-weighted vote (each vote weighs its rating), our Dawid-Skene, and Dawid-Skene on the
   votes rated 3-5 only (an item whose votes are all rated 1-2 keeps them), for two crowds: the
   demo's mix (expert, average, average, noisy, spammer: the spammer overconfident) and a crowd with a biased,
   overconfident labeler in place of the expert.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labeling_assets.core.consensus.methods import aggregate  # noqa: E402
from labeling_assets.core.fields.crowd import field_answers, rating_style  # noqa: E402
from labeling_assets.core.fields.self_rating import calibration, rating_weighted_vote, without_guesses  # noqa: E402
from labeling_assets.core.fields.spec import SELF_CONFIDENCE, self_confidence_field  # noqa: E402
from labeling_assets.core.labelstudio.crowd import LabelerSpec, default_crowd, plan_crowd  # noqa: E402

CLASSES = [str(d) for d in range(10)]
CROWDS: dict[str, list[LabelerSpec]] = {
    "demo mix": default_crowd(5),
    "biased in place of the expert": [
        LabelerSpec("b_biased", "biased"), LabelerSpec("b_avg1", "average"), LabelerSpec("b_avg2", "average"),
        LabelerSpec("b_noisy", "noisy"), LabelerSpec("b_spam", "spammer"),
    ],
}  # fmt: skip
METHODS = ("majority", "rating_weighted", "dawid_skene", "dawid_skene_sure")


def answers(crowd: list[LabelerSpec], items: int, overlap: int, seed: int) -> pd.DataFrame:
    """The crowd's answers with self-ratings: item_id, labeler_id, label, rating, style, truth."""
    rng = np.random.default_rng(seed)
    truth: dict[Hashable, str] = {i: CLASSES[int(rng.integers(len(CLASSES)))] for i in range(items)}
    plan = plan_crowd(truth, crowd, CLASSES, overlap=overlap, seed=seed)
    specs, field = {s.name: s for s in crowd}, self_confidence_field()
    rows = []
    for a in plan.annotations:
        spec = specs[a.labeler]
        rating = field_answers(spec, a.item_id, a.label, truth[a.item_id], [field], seed=seed)[SELF_CONFIDENCE]
        rows.append({"item_id": a.item_id, "labeler_id": a.labeler, "label": a.label, "rating": rating,
                     "style": rating_style(spec), "truth": truth[a.item_id]})  # fmt: skip
    return pd.DataFrame(rows)


def consensus_accuracy(frame: pd.DataFrame) -> dict[str, float]:
    truth = frame.drop_duplicates("item_id").astype({"item_id": str}).set_index("item_id")["truth"]
    votes = frame.loc[:, ["item_id", "labeler_id", "label"]].astype({"item_id": str})
    ratings = frame.loc[:, ["item_id", "labeler_id", "rating"]].astype({"item_id": str}).rename(columns={"rating": "value"})
    out = {
        "majority": aggregate(votes, "majority", classes=CLASSES).set_index("item_id")["label"],
        "rating_weighted": rating_weighted_vote(frame.astype({"item_id": str}), CLASSES),
        "dawid_skene": aggregate(votes, "dawid_skene", classes=CLASSES).set_index("item_id")["label"],
        # consensus_labels' drop_votes_self_rated_below=3: votes rated 1-2 (a guess) left out, unless all of an item's are.
        "dawid_skene_sure": aggregate(without_guesses(votes, ratings, 3)[0], "dawid_skene", classes=CLASSES)
        .set_index("item_id")["label"],
    }
    return {name: float((labels.reindex(truth.index).astype(str) == truth).mean() * 100) for name, labels in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--overlap", type=int, default=3)
    args = parser.parse_args()

    print(f"== 1. calibration (demo mix, {args.items} items x {args.overlap} answers, {args.seeds} seeds pooled)")
    pooled = pd.concat([answers(CROWDS["demo mix"], args.items, args.overlap, s) for s in range(args.seeds)])
    pooled["right"] = pooled["label"] == pooled["truth"]
    for style, part in [*pooled.groupby("style"), ("all", pooled)]:
        cal = calibration(part["rating"].tolist(), part["right"].tolist())
        levels = "  ".join(f"{r}: {acc:.0%} of {n}" for r, (n, acc) in cal.levels.items())
        rho = "n/a" if cal.spearman is None else f"{cal.spearman:+.2f}"
        print(f"  {style:<14} n={cal.n:<6} ECE {cal.ece:.3f}  Spearman {rho}  accuracy by rating: {levels}")

    print(f"\n== 2. consensus accuracy % on the truth (mean [min-max] over {args.seeds} seeds)")
    for name, crowd in CROWDS.items():
        scores = pd.DataFrame([consensus_accuracy(answers(crowd, args.items, args.overlap, s)) for s in range(args.seeds)])
        parts = [f"{m} {scores[m].mean():.2f} [{scores[m].min():.1f}-{scores[m].max():.1f}]" for m in METHODS]
        gain, sure = scores["rating_weighted"] - scores["majority"], scores["dawid_skene_sure"] - scores["dawid_skene"]
        print(f"  {name:<30} " + "  ".join(parts)
              + f"\n  {'':<30} weighted - majority {gain.mean():+.2f} (better in {(gain > 0).sum()}/{len(gain)} seeds); "
              f"sure - dawid_skene {sure.mean():+.2f} (better in {(sure > 0).sum()}/{len(sure)} seeds)")  # fmt: skip


if __name__ == "__main__":
    main()
