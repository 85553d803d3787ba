"""How much labelers agree on boxes: for every two labelers of an item, the F1 of one's boxes against the other's
(matched per class at IoU 0.5 by an assignment), averaged over all such pairs.

``F1 = 2 * matched / (boxes of one + boxes of the other)``; two labelers who both answered "No object" agree fully.
Per class, a pair counts only where at least one of the two drew that class (otherwise every class nobody drew
would look agreed). There is no chance correction (unlike Fleiss' kappa for classes): boxes have no natural
chance of matching, and a box drawn at random almost never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from labeling_assets.core.tasks.boxes.geometry import FloatArray
from labeling_assets.core.tasks.boxes.matching import CORNERS, assign

AGREEMENT_IOU = 0.5


@dataclass(frozen=True)
class BoxAgreement:
    """``f1``: mean pairwise F1 (NaN without any pair); ``n_pairs``: labeler pairs on shared items; ``per_class``:
    class -> (mean F1, pairs where one of the two drew it)."""

    f1: float
    n_pairs: int
    per_class: dict[str, tuple[float, int]] = field(default_factory=dict)
    per_item: dict[object, float] = field(default_factory=dict)  # item -> its pairs' mean F1 (items with a pair)


def box_agreement(
    votes: pd.DataFrame, boxes: pd.DataFrame, classes: Sequence[str], iou_threshold: float = AGREEMENT_IOU
) -> BoxAgreement:
    """Pairwise agreement of valid box votes (``votes``: ``item_id, labeler_id``; ``boxes`` as :func:`.votes.box_votes`
    gives them)."""
    drawn: dict[tuple[object, object, object], FloatArray] = {}
    for key, g in boxes.groupby(["item_id", "labeler_id", "label"]):
        drawn[(key[0], key[1], key[2])] = g[CORNERS].to_numpy(dtype=float)
    f1s: list[float] = []
    per_class: dict[str, list[float]] = {c: [] for c in classes}
    per_item: dict[object, float] = {}
    empty: FloatArray = np.zeros((0, 4))
    for item, labelers in votes.drop_duplicates(["item_id", "labeler_id"]).groupby("item_id")["labeler_id"]:
        first = len(f1s)
        for a, b in combinations(sorted(labelers), 2):
            matched = total = 0
            for label in classes:
                mine, theirs = drawn.get((item, a, label), empty), drawn.get((item, b, label), empty)
                n = len(mine) + len(theirs)
                if n == 0:
                    continue
                m = len(assign(mine, theirs, iou_threshold))
                per_class[label].append(2 * m / n)
                matched, total = matched + m, total + n
            f1s.append(1.0 if total == 0 else 2 * matched / total)
        if len(f1s) > first:
            per_item[item] = float(np.mean(f1s[first:]))
    return BoxAgreement(
        float(np.mean(f1s)) if f1s else float("nan"),
        len(f1s),
        {c: (float(np.mean(v)) if v else float("nan"), len(v)) for c, v in per_class.items()},
        per_item,
    )
