"""The QA report's figures for label sets (multi-label projects), where the single-label ones would mislead.

- Gold: exact-set accuracy says little on its own (one missed finding of four makes a set wrong), so each
  labeler's gold row also gives sensitivity (findings on gold they ticked) and specificity (absent classes
  they left unticked), pooled over classes: the two numbers the labeler gate judges.
- Agreement: Cohen's kappa on whole sets treats {1, 7} vs {1} like {1, 7} vs {3}; per class (ticked or not)
  it measures what labelers actually agree on. The chart shows the mean over classes and labeler pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.agreement import pairwise_cohen_kappa
from labeling_assets.core.consensus.multilabel_stats import finding_counts


def classes_of(*labels: pd.Series) -> list[str]:
    """Every class named in these label sets (a report without the project's list shows what was used)."""
    return sorted(
        {str(c) for series in labels for value in series if isinstance(value, list | tuple) for c in value}
    )


def per_class_kappa(votes: pd.DataFrame, classes: Sequence[str], *, min_common: int = 5) -> float | None:
    """Mean pairwise Cohen's kappa over classes, each class a present/absent answer; None when none is defined
    (a class nobody or everybody ticked has no kappa)."""
    kappas: list[float] = []
    for name in classes:
        ticked = votes["label"].map(lambda s, c=name: "1" if isinstance(s, list | tuple) and c in s else "0")
        pairs = pairwise_cohen_kappa(
            votes.assign(label=ticked)[["item_id", "labeler_id", "label"]], min_common=min_common
        )
        kappas += [float(k) for k in pairs["kappa"] if pd.notna(k) and np.isfinite(k)]
    return float(np.mean(kappas)) if kappas else None


def finding_rates(votes: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    """Per labeler on gold sets: ``labeler_id, sensitivity, specificity`` pooled over classes (NaN without a
    present / absent finding on their gold items)."""
    rows = []
    for labeler, mine in votes.groupby("labeler_id"):
        tp, present, tn, absent = finding_counts(mine[["item_id", "label"]], gold, classes)
        rows.append({"labeler_id": labeler, "sensitivity": tp / present if present else np.nan,
                     "specificity": tn / absent if absent else np.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=["labeler_id", "sensitivity", "specificity"])
