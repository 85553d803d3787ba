"""Label issues: consensus labels that a model trained on the other items disagrees with.

When no trained model exists, out-of-sample class probabilities come from a cross-validated baseline:
logistic regression on downsampled grayscale pixels of the stored raw images. Each item's probabilities
come from a model that never saw that item (the point of ``find_label_issues``: in-sample probabilities
memorise the given label and hide its errors). cleanlab's ``find_label_issues`` then flags the items
whose consensus label looks wrong, ranked by label quality (lowest first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from PIL import Image

from labeling_assets.core.training.baseline import pixel_features

DEFAULT_FEATURE_SIZE = 16

# find_label_issues needs a few examples per class to estimate noise rates; below this there is no
# meaningful answer and we return none rather than noise.
MIN_ITEMS = 10


def image_features(paths: Sequence[str | Path], *, size: int = DEFAULT_FEATURE_SIZE) -> NDArray[Any]:
    """Downsampled grayscale pixels in [0, 1], one flattened row of ``size * size`` per image.

    Box filtering (an average over each cell) keeps the coarse shape the baseline needs and drops
    pixel noise. Raises ``OSError`` naming the file when one cannot be read.
    """
    rows, failed = pixel_features(paths, size, resample=Image.Resampling.BOX)
    if failed:
        raise OSError(f"cannot read image {paths[failed[0]]} ({len(failed)} unreadable in all)")
    return rows


def pixel_inputs(paths: Sequence[str | Path], *, feature_size: int, n_folds: int, model: str) -> tuple[NDArray[Any], str]:
    """(the class kinds' label-issue features: :func:`image_features`, what scores them in one line)."""
    source = (f"{n_folds}-fold cross-validated {model} on {feature_size}x{feature_size} grayscale pixels (every item "
              "scored by a model that never saw it)")  # fmt: skip
    return image_features(paths, size=feature_size), source


def _fold_indices(labels: NDArray[Any], n_folds: int, seed: int) -> list[tuple[NDArray[Any], NDArray[Any]]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min())
    folds = max(2, min(n_folds, len(labels)))
    if smallest >= 2:
        # Stratify when every present class can appear in at least two folds.
        splitter: Any = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels))
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(labels))


def cross_val_pred_probs(
    features: NDArray[Any],
    labels: NDArray[Any],
    n_classes: int,
    *,
    n_folds: int = 5,
    seed: int = 0,
    regularization: float = 0.1,
) -> NDArray[Any]:
    """Out-of-sample class probabilities (n_items, n_classes) from K-fold logistic regression.

    Args:
        features: (n_items, n_features) inputs, e.g. :func:`image_features`.
        labels: integer class codes in ``0..n_classes-1``.
        n_classes: number of classes (columns of the result; classes absent from a training fold get
            a small floor probability instead of zero, so downstream logs stay finite).
        n_folds: folds (reduced when a class has fewer items than folds).
        seed: fold shuffling seed (same inputs, same output).
        regularization: inverse regularization strength ``C`` of the logistic regression.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(labels) < 2:
        raise ValueError("cross-validation needs at least two items")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be class codes in 0..{n_classes - 1}")
    floor = 1e-4
    probs = np.full((len(labels), n_classes), floor)
    # One BLAS thread: these fits are small, and on a shared machine a threaded BLAS ran them ~40x slower.
    with threadpool_limits(limits=1):
        for train, test in _fold_indices(labels, n_folds, seed):
            present = np.unique(labels[train])
            if len(present) == 1:  # a one-class fold: nothing to fit, predict that class
                probs[np.ix_(test, present)] = 1.0
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=500))
            model.fit(features[train], labels[train])
            probs[np.ix_(test, model.classes_)] = np.maximum(model.predict_proba(features[test]), floor)
    normalized: NDArray[np.float64] = probs / probs.sum(axis=1, keepdims=True)
    return normalized


@dataclass(frozen=True)
class LabelIssues:
    """Items whose given label looks wrong, worst first.

    Attributes:
        issues: ``item_id, given_label, suggested_label, label_quality, suggested_probability``, ranked by
            label_quality ascending.
        label_quality: every item's cleanlab self-confidence score (indexed by item_id).
        notes: why nothing was computed, or what was simplified.
    """

    issues: pd.DataFrame
    label_quality: pd.Series
    notes: list[str]


ISSUE_COLUMNS = ["item_id", "given_label", "suggested_label", "label_quality", "suggested_probability"]


def find_issues(
    item_ids: Sequence[Any], labels: Sequence[Any], pred_probs: NDArray[Any], classes: Sequence[Any]
) -> LabelIssues:
    """cleanlab ``find_label_issues`` on given labels and out-of-sample ``pred_probs`` (columns = classes).

    Classes nobody was labeled with are dropped before cleanlab (it estimates a noise rate per given
    class, and an empty class has none); their probability mass is renormalized away.
    """
    ids = list(item_ids)
    class_list = list(classes)
    position = {c: i for i, c in enumerate(class_list)}
    unknown = sorted({str(v) for v in labels if v not in position})
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not in classes {class_list}")
    codes = np.asarray([position[v] for v in labels], dtype=np.int64)
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.shape != (len(ids), len(class_list)):
        raise ValueError(f"pred_probs has shape {probs.shape}; expected ({len(ids)}, {len(class_list)})")
    empty = LabelIssues(pd.DataFrame(columns=ISSUE_COLUMNS), pd.Series(dtype=float), [])
    present = np.unique(codes)
    if len(ids) < MIN_ITEMS or len(present) < 2:
        why = f"{len(ids)} item(s)" if len(ids) < MIN_ITEMS else "a single class"
        return LabelIssues(empty.issues, empty.label_quality, [f"no label-issue search: only {why}"])

    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    compact = np.searchsorted(present, codes)
    sub = probs[:, present]
    sub = sub / sub.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(compact, sub, method="self_confidence")
    flagged = find_label_issues(
        compact, sub, filter_by="prune_by_noise_rate", return_indices_ranked_by=None, n_jobs=1
    )
    order = np.flatnonzero(flagged)
    order = order[np.lexsort((order, quality[order]))]  # worst first; ties by position (deterministic)
    suggested = present[sub.argmax(axis=1)]
    issues = pd.DataFrame(
        {
            "item_id": [ids[n] for n in order],
            "given_label": [class_list[codes[n]] for n in order],
            "suggested_label": [class_list[suggested[n]] for n in order],
            "label_quality": quality[order].astype(float),
            "suggested_probability": sub[order, sub.argmax(axis=1)[order]].astype(float),
        },
        columns=ISSUE_COLUMNS,
    )
    notes = []
    if len(present) < len(class_list):
        notes.append(f"{len(class_list) - len(present)} class(es) have no consensus label and were left out")
    return LabelIssues(issues, pd.Series(quality, index=ids, dtype=float), notes)
