"""Label issues for label sets: consensus sets that an out-of-sample model disagrees with (multi-label projects).

The same idea as :mod:`.label_issues`, per class: out-of-sample P(class present) from K-fold logistic regressions
(one per class) on the downsampled pixels, then cleanlab's multi-label ``find_label_issues`` (Thyagarajan et al.
2023: each class as a binary task, an item flagged when any of its classes looks wrong) ranked by cleanlab's
multi-label label quality (lowest first). The suggested set is the classes the model puts above 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.label_issues import ISSUE_COLUMNS, MIN_ITEMS, LabelIssues
from labeling_assets.core.label_sets import to_indicator

_FLOOR = 1e-4


def cross_val_set_pred_probs(
    features: NDArray[Any],
    indicator: NDArray[Any],
    *,
    n_folds: int = 5,
    seed: int = 0,
    regularization: float = 0.1,
) -> NDArray[np.float64]:
    """Out-of-sample P(class present), (n_items, K), from K-fold logistic regressions, one per class.

    A class that is constant in a training fold (nobody has it, or everybody) is predicted at that fold's rate,
    clipped to [1e-4, 1 - 1e-4] so that downstream logs stay finite.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    targets = np.asarray(indicator, dtype=np.int64)
    if len(targets) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(targets)} label sets")
    if len(targets) < 2:
        raise ValueError("cross-validation needs at least two items")
    probs = np.empty(targets.shape, dtype=np.float64)
    folds = KFold(n_splits=max(2, min(n_folds, len(targets))), shuffle=True, random_state=seed)
    # One BLAS thread: the fits are small (see label_issues.cross_val_pred_probs).
    with threadpool_limits(limits=1):
        for train, test in folds.split(features):
            for k in range(targets.shape[1]):
                column = targets[train, k]
                if column.min() == column.max():
                    probs[test, k] = float(column[0])
                    continue
                model = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=500))
                model.fit(features[train], column)
                probs[test, k] = model.predict_proba(features[test])[:, 1]
    clipped: NDArray[np.float64] = np.clip(probs, _FLOOR, 1.0 - _FLOOR)
    return clipped


def find_set_issues(
    item_ids: Sequence[Any], sets: Sequence[Sequence[str]], pred_probs: NDArray[Any], classes: Sequence[str]
) -> LabelIssues:
    """cleanlab's multi-label ``find_label_issues`` on the consensus sets and out-of-sample per-class ``pred_probs``.

    Returns :class:`.label_issues.LabelIssues` whose ``given_label`` / ``suggested_label`` are sorted lists and
    ``suggested_probability`` the model's confidence in its suggested set (mean over classes of max(p, 1 - p)).
    Classes no consensus set holds are left out (cleanlab estimates a noise rate per class).
    """
    ids = list(item_ids)
    class_list = [str(c) for c in classes]
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.shape != (len(ids), len(class_list)):
        raise ValueError(f"pred_probs has shape {probs.shape}; expected ({len(ids)}, {len(class_list)})")
    given = to_indicator(sets, class_list).astype(bool)
    present = np.flatnonzero(given.any(axis=0))
    empty = pd.DataFrame(columns=ISSUE_COLUMNS)
    if len(ids) < MIN_ITEMS or len(present) < 2:
        why = (
            f"{len(ids)} item(s)" if len(ids) < MIN_ITEMS else "fewer than two classes in the consensus sets"
        )
        return LabelIssues(empty, pd.Series(dtype=float), [f"no label-issue search: only {why}"])

    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    sub = probs[:, present]
    labels = [list(np.flatnonzero(row)) for row in given[:, present]]
    quality = np.asarray(get_label_quality_scores(labels, sub), dtype=np.float64)
    flagged = np.asarray(
        find_label_issues(labels, sub, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool
    )
    order = np.flatnonzero(flagged)
    order = order[np.lexsort((order, quality[order]))]  # worst first; ties by position (deterministic)
    suggested = sub > 0.5
    names = [class_list[k] for k in present]
    issues = pd.DataFrame(
        {
            "item_id": [ids[n] for n in order],
            "given_label": [sorted(class_list[k] for k in np.flatnonzero(given[n])) for n in order],
            "suggested_label": [sorted(names[k] for k in np.flatnonzero(suggested[n])) for n in order],
            "label_quality": quality[order],
            "suggested_probability": np.maximum(sub, 1.0 - sub).mean(axis=1)[order],
        },
        columns=ISSUE_COLUMNS,
    )
    notes = []
    if len(present) < len(class_list):
        notes.append(f"{len(class_list) - len(present)} class(es) are in no consensus set and were left out")
    return LabelIssues(issues, pd.Series(quality, index=ids, dtype=float), notes)
