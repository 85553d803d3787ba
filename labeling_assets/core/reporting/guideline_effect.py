"""Agreement and gold accuracy per guideline version: the answers given under each version, measured apart, so a
change of the guidelines shows its effect (the QA report's "Guideline versions" table)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from labeling_assets.core.consensus.gates import wilson_interval

BEFORE_ANY = "before any"  # answers given before the first version was pushed
COLUMNS = ["guideline version", "answers", "labelers", "agreement (κ)", "gold answers", "gold accuracy", "95% CI"]


def per_guideline_version(
    votes: pd.DataFrame,
    versions: pd.Series,
    gold_correct: pd.Series,
    kappa: Callable[[pd.DataFrame], float | None],
) -> pd.DataFrame:
    """One row per guideline version (answers before any version first), oldest first.

    ``votes``: item_id, labeler_id, label (the agreement's answers); ``versions``: each vote's guideline version on
    the same index (missing: before any); ``gold_correct``: whether each gold vote is right, on the gold votes'
    index; ``kappa``: one group of votes -> its agreement (the report's per-period measure), None when undefined.
    """
    keys = versions.reindex(votes.index)
    keys = keys.map(lambda v: BEFORE_ANY if v is None or pd.isna(v) else int(v))
    rows = []
    ordered = sorted(set(keys), key=lambda v: (v != BEFORE_ANY, v if isinstance(v, int) else 0))
    for key in ordered:
        group = votes[keys == key]
        correct = gold_correct[gold_correct.index.isin(group.index)]
        n, right = len(correct), int(correct.sum())
        agreement = kappa(group)
        low, high = wilson_interval(right, n) if n else (float("nan"), float("nan"))
        rows.append(
            {
                "guideline version": str(key),
                "answers": len(group),
                "labelers": int(group["labeler_id"].nunique()),
                "agreement (κ)": "n/a" if agreement is None else f"{agreement:.3f}",
                "gold answers": n,
                "gold accuracy": f"{right / n:.3f}" if n else "n/a",
                "95% CI": f"{low:.2f} - {high:.2f}" if n else "",
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
