"""Agreement and labeler quality for label sets (multi-label projects).

- :func:`per_class_fleiss_kappa`: each class as a binary question (chose it / did not), Fleiss' kappa over
  the items with two or more labelers; NaN for a class nobody (or everybody) chose.
- :func:`krippendorff_alpha_sets`: one overall Krippendorff's alpha with a set distance, Jaccard
  (1 - |A & B| / |A | B|) or MASI (Passonneau 2006: Jaccard weighted by monotonicity, so a subset counts
  as closer than a partial overlap); two empty sets agree (distance 0).
- :func:`per_class_f1`: predicted sets against true sets per class (the benchmarks' score).
- :func:`set_labeler_stats`: per labeler on gold (hidden gold or adjudicated sets): exact-set accuracy with
  its Wilson interval, and per class sensitivity and specificity with theirs.

Input is the set votes of :func:`.votes.latest_set_votes` (``item_id, labeler_id, label`` with sorted lists).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from labeling_assets.core.consensus.agreement import fleiss_kappa
from labeling_assets.core.consensus.encoding import Floats
from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.label_sets import to_indicator

SetDistance = Literal["jaccard", "masi"]
_CHUNK = 512  # rows of the distinct-set distance matrix computed at once (memory: 512 x distinct sets)


def _one_per_labeler(votes: pd.DataFrame) -> pd.DataFrame:
    return votes.drop_duplicates(["item_id", "labeler_id"], keep="last")


def per_class_fleiss_kappa(votes: pd.DataFrame, classes: Sequence[str]) -> dict[str, float]:
    """Fleiss' kappa per class, each class a binary (present / absent) rating of the items."""
    frame = _one_per_labeler(votes)
    if frame.empty:
        return dict.fromkeys(classes, float("nan"))
    item_codes, _ = pd.factorize(frame["item_id"], sort=True)
    indicator = to_indicator(frame["label"].tolist(), classes).astype(np.float64)
    n_items = int(item_codes.max()) + 1
    present = np.zeros((n_items, len(classes)))
    np.add.at(present, item_codes, indicator)
    raters = np.bincount(item_codes, minlength=n_items).astype(np.float64)
    out = {}
    for k, name in enumerate(classes):
        counts = np.column_stack([raters - present[:, k], present[:, k]])
        out[str(name)] = fleiss_kappa(counts).kappa
    return out


def _set_distance(inter: Floats, size_a: Floats, size_b: Floats, metric: SetDistance) -> Floats:
    """Jaccard or MASI distance from intersection and set sizes (broadcasting)."""
    union = size_a + size_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, inter / union, 1.0)  # two empty sets are the same set
    if metric == "jaccard":
        distance: Floats = 1.0 - jaccard
        return distance
    equal = (inter == size_a) & (inter == size_b)
    subset = (inter == size_a) | (inter == size_b)
    monotonicity = np.where(equal, 1.0, np.where(subset, 2 / 3, np.where(inter > 0, 1 / 3, 0.0)))
    masi: Floats = 1.0 - jaccard * monotonicity
    return masi


def _distance(a: NDArray[np.bool_], b: NDArray[np.bool_], metric: SetDistance) -> Floats:
    """Pairwise distance between the rows of ``a`` (m, K) and ``b`` (n, K) as an (m, n) matrix."""
    af, bf = a.astype(np.float64), b.astype(np.float64)
    return _set_distance(af @ bf.T, af.sum(axis=1)[:, None], bf.sum(axis=1)[None, :], metric)


def krippendorff_alpha_sets(
    votes: pd.DataFrame, classes: Sequence[str], *, distance: SetDistance = "masi"
) -> float:
    """Krippendorff's alpha over all items with two or more labelers, with a set distance.

    alpha = 1 - D_o / D_e: D_o averages the distance within an item over its labeler pairs (each item
    weighted by 1 / (m_u - 1), Krippendorff 2011), D_e the distance between any two answers of the pairable
    items. NaN when fewer than two pairable answers exist or every answer is the same set.
    """
    frame = _one_per_labeler(votes)
    if frame.empty:
        return float("nan")
    per_item = frame.groupby("item_id")["labeler_id"].transform("size").to_numpy()
    frame = frame[per_item >= 2]
    if frame.empty:
        return float("nan")
    indicator = to_indicator(frame["label"].tolist(), classes).astype(bool)
    # Distinct sets and how often each occurs: D_e needs their pairwise distances only.
    distinct, code, counts = np.unique(indicator, axis=0, return_inverse=True, return_counts=True)
    code = code.ravel()
    n = float(len(frame))
    weights = counts.astype(np.float64)
    expected_sum = 0.0
    for start in range(0, len(distinct), _CHUNK):
        block = _distance(distinct[start : start + _CHUNK], distinct, distance)
        expected_sum += float(weights[start : start + _CHUNK] @ block @ weights)
    expected = expected_sum / (n * (n - 1))
    if expected <= 0:
        return float("nan")
    # Within-item pairs (ordered, a != b), each item weighted by 1 / (m_u - 1).
    item_codes, _ = pd.factorize(frame["item_id"])
    order = np.argsort(item_codes, kind="stable")
    item_sorted, code_sorted = item_codes[order], code[order]
    starts = np.flatnonzero(np.r_[True, item_sorted[1:] != item_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(item_sorted)])
    observed_sum = 0.0
    for m in np.unique(sizes):
        groups = starts[sizes == m][:, None] + np.arange(m)[None, :]  # (items of size m, m) vote positions
        sets = code_sorted[groups]
        left, right = np.triu_indices(int(m), k=1)
        a, b = sets[:, left].ravel(), sets[:, right].ravel()
        d = _pair_distance(distinct, a, b, distance)
        observed_sum += 2.0 * float(d.sum()) / (m - 1)  # both orders of each pair
    observed = observed_sum / n
    return float(1.0 - observed / expected)


def _pair_distance(
    distinct: NDArray[np.bool_], a: NDArray[np.int64], b: NDArray[np.int64], metric: SetDistance
) -> Floats:
    """Distance between distinct sets ``a[i]`` and ``b[i]`` for each i (row-wise, no full matrix)."""
    left, right = distinct[a].astype(np.float64), distinct[b].astype(np.float64)
    return _set_distance((left * right).sum(axis=1), left.sum(axis=1), right.sum(axis=1), metric)


def set_labeler_stats(
    votes: pd.DataFrame, truth: Mapping[Any, Sequence[str]] | pd.Series, classes: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each labeler's answers on the items with a known true set.

    Returns ``(overall, per_class)``:
        overall: ``labeler_id, n_gold, exact_correct, exact_accuracy, exact_ci_low, exact_ci_high``
            (exact-set accuracy with its 95% Wilson interval; NaN accuracy without gold answers).
        per_class: ``labeler_id, class, tp, fn, tn, fp, sensitivity, sensitivity_ci_low, sensitivity_ci_high,
            specificity, specificity_ci_low, specificity_ci_high`` (NaN when the class never / always is).
    """
    frame = _one_per_labeler(votes)
    series = truth if isinstance(truth, pd.Series) else pd.Series(dict(truth), dtype=object)
    on = frame[frame["item_id"].isin(set(series.index))]
    labelers = sorted(frame["labeler_id"].unique(), key=str)
    overall_rows = []
    class_rows = []
    given = to_indicator(on["label"].tolist(), classes).astype(bool)
    true = to_indicator([series[i] for i in on["item_id"]], classes).astype(bool)
    owner = on["labeler_id"].to_numpy()
    for labeler in labelers:
        mine = owner == labeler
        g, t = given[mine], true[mine]
        n = int(mine.sum())
        correct = int((g == t).all(axis=1).sum())
        low, high = wilson_interval(correct, n)
        overall_rows.append({"labeler_id": labeler, "n_gold": n, "exact_correct": correct,
                             "exact_accuracy": correct / n if n else np.nan,
                             "exact_ci_low": low if n else np.nan, "exact_ci_high": high if n else np.nan})  # fmt: skip
        tp, fn = (g & t).sum(axis=0), (~g & t).sum(axis=0)
        tn, fp = (~g & ~t).sum(axis=0), (g & ~t).sum(axis=0)
        for k, name in enumerate(classes):
            pos, neg = int(tp[k] + fn[k]), int(tn[k] + fp[k])
            s_low, s_high = wilson_interval(int(tp[k]), pos)
            c_low, c_high = wilson_interval(int(tn[k]), neg)
            class_rows.append({
                "labeler_id": labeler, "class": str(name), "tp": int(tp[k]), "fn": int(fn[k]), "tn": int(tn[k]),
                "fp": int(fp[k]), "sensitivity": tp[k] / pos if pos else np.nan,
                "sensitivity_ci_low": s_low if pos else np.nan, "sensitivity_ci_high": s_high if pos else np.nan,
                "specificity": tn[k] / neg if neg else np.nan,
                "specificity_ci_low": c_low if neg else np.nan, "specificity_ci_high": c_high if neg else np.nan,
            })  # fmt: skip
    overall = pd.DataFrame(
        overall_rows,
        columns=["labeler_id", "n_gold", "exact_correct", "exact_accuracy", "exact_ci_low", "exact_ci_high"],
    )
    per_class = pd.DataFrame(
        class_rows,
        columns=["labeler_id", "class", "tp", "fn", "tn", "fp", "sensitivity", "sensitivity_ci_low",
                 "sensitivity_ci_high", "specificity", "specificity_ci_low", "specificity_ci_high"],
    )  # fmt: skip
    return overall, per_class


def per_class_f1(
    predicted: Mapping[Any, Sequence[str]], truth: Mapping[Any, Sequence[str]], classes: Sequence[str]
) -> pd.DataFrame:
    """Per-class precision, recall and F1 of predicted sets against true sets, on the items both have.

    Returns one row per class (``class, support, tp, fp, fn, precision, recall, f1``) plus a last row
    ``class="macro"`` (mean F1 over classes where it is defined) and ``class="micro"`` (pooled counts).
    F1 is NaN for a class nobody has and nobody predicted (nothing to find; left out of the macro mean).
    """
    items = [i for i in truth if i in predicted]
    if not items:
        raise ValueError("no item has both a predicted and a true set")
    pred = to_indicator([predicted[i] for i in items], classes).astype(bool)
    true = to_indicator([truth[i] for i in items], classes).astype(bool)
    tp = (pred & true).sum(axis=0)
    fp = (pred & ~true).sum(axis=0)
    fn = (~pred & true).sum(axis=0)

    def scores(tp_: Floats, fp_: Floats, fn_: Floats) -> tuple[Floats, Floats, Floats]:
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(tp_ + fp_ > 0, tp_ / (tp_ + fp_), np.nan)
            recall = np.where(tp_ + fn_ > 0, tp_ / (tp_ + fn_), np.nan)
            f1 = np.where(2 * tp_ + fp_ + fn_ > 0, 2 * tp_ / (2 * tp_ + fp_ + fn_), np.nan)
        return precision, recall, f1

    precision, recall, f1 = scores(tp.astype(float), fp.astype(float), fn.astype(float))
    frame = pd.DataFrame(
        {
            "class": list(classes),
            "support": true.sum(axis=0),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }  # fmt: skip
    )
    mp, mr, mf = scores(*(np.asarray([float(v.sum())]) for v in (tp, fp, fn)))
    summary = pd.DataFrame(
        [
            {"class": "macro", "support": int(true.sum()), "tp": int(tp.sum()), "fp": int(fp.sum()),
             "fn": int(fn.sum()), "precision": float(np.nanmean(precision)) if np.isfinite(precision).any() else np.nan,
             "recall": float(np.nanmean(recall)) if np.isfinite(recall).any() else np.nan,
             "f1": float(np.nanmean(f1)) if np.isfinite(f1).any() else np.nan},
            {"class": "micro", "support": int(true.sum()), "tp": int(tp.sum()), "fp": int(fp.sum()),
             "fn": int(fn.sum()), "precision": float(mp[0]), "recall": float(mr[0]), "f1": float(mf[0])},
        ]
    )  # fmt: skip
    return pd.concat([frame, summary], ignore_index=True)
