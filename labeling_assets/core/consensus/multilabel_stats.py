"""One labeler's statistics in a multi-label project: the :class:`.labeler_stats.LabelerStats` row for label sets.

The row keeps its columns (one ``labeler_stats`` table for both task types) with set meanings:

- ``gold_accuracy``: exact-set accuracy on gold (the whole set right; a strict number: with ten classes an
  average labeler is exactly right on well under 0.8 of the items);
- ``kappa_vs_consensus``: the mean over classes of Cohen's kappa between the labeler's present/absent answers
  and the consensus sets (classes where kappa is defined);
- ``class_distribution``: how many of the labeler's sets hold each class; ``class_usage`` compares that with
  the consensus sets of the same items (a lazy labeler "avoids" the findings they miss).

The gold *gate* (check, automatic pause, leaderboard verdict) judges findings instead of whole sets, see
:func:`set_gold_counts`: a labeler who surely misses more than one finding in five (sensitivity) or surely
ticks more than one absent class in five (specificity) fails; exact-set accuracy would fail every average
labeler on a ten-class task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.gates import wilson_interval
from labeling_assets.core.consensus.labeler_stats import (
    ALL_WINDOW,
    ClassUsage,
    LabelerStats,
    labels_per_day,
    time_stats,
)
from labeling_assets.core.label_sets import to_indicator


def _on(labels: pd.DataFrame, reference: pd.Series) -> tuple[pd.DataFrame, list[Any]]:
    """The labeler's rows on items ``reference`` (item_id -> set) has, and those reference sets in order."""
    if labels.empty or reference.empty:
        return labels.iloc[0:0], []
    positions = reference.index.get_indexer(pd.Index(labels["item_id"].to_numpy(dtype=object), dtype=object))
    found = positions >= 0
    values = reference.to_numpy(dtype=object)
    return labels[found], [values[p] for p in positions[found]]


def _class_usage(
    own: np.ndarray[Any, Any], reference: np.ndarray[Any, Any], classes: Sequence[str]
) -> list[ClassUsage]:
    """Per class: the labeler's count against the consensus count on the same items (the flags of class_usage)."""
    out = []
    for k, name in enumerate(classes):
        got, expected = int(own[:, k].sum()), float(reference[:, k].sum())
        ratio = got / expected if expected > 0 else (float("inf") if got > 0 else 1.0)
        flag = "avoids" if expected >= 5 and ratio < 0.5 else "overuses" if got >= 5 and ratio > 2.0 else ""
        out.append(ClassUsage(label=name, observed=got, expected=expected, ratio=ratio, flag=flag))
    return out


def _binary_kappas(own: np.ndarray[Any, Any], reference: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Cohen's kappa per column of two aligned (n, K) present/absent matrices; NaN where chance agreement is 1."""
    observed = (own == reference).mean(axis=0)
    p, q = own.mean(axis=0), reference.mean(axis=0)
    expected = p * q + (1 - p) * (1 - q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappas: np.ndarray[Any, Any] = np.where(
            expected < 1.0, (observed - expected) / (1.0 - expected), np.nan
        )
    return kappas


def compute_set_labeler_stats(
    labels: pd.DataFrame,
    *,
    labeler_id: str,
    classes: Sequence[str],
    gold: pd.Series | None = None,
    consensus: pd.Series | None = None,
    window: str = ALL_WINDOW,
) -> LabelerStats:
    """:func:`.labeler_stats.compute_labeler_stats` for label sets (``label`` a sorted list; gold and consensus
    Series of sets by item_id); see the module docstring for what each field means here."""
    empty = pd.Series(dtype=object)
    on_gold, gold_sets = _on(labels, gold if gold is not None else empty)
    exact = [sorted(a) == sorted(b) for a, b in zip(on_gold["label"], gold_sets, strict=True)]
    on_consensus, consensus_sets = _on(labels, consensus if consensus is not None else empty)
    kappa = None
    usage: list[ClassUsage] = []
    if consensus_sets:
        own = to_indicator(on_consensus["label"].tolist(), classes)
        reference = to_indicator(consensus_sets, classes)
        kappas = _binary_kappas(own.astype(bool), reference.astype(bool))
        kappa = float(np.nanmean(kappas)) if np.isfinite(kappas).any() else None
        usage = _class_usage(own, reference, classes)
    median, p90 = time_stats(labels["lead_time_s"]) if "lead_time_s" in labels else (None, None)
    counts = to_indicator(labels["label"].tolist(), classes).sum(axis=0)
    return LabelerStats(
        labeler_id=labeler_id,
        window=window,
        n_labels=len(labels),
        gold_accuracy=float(np.mean(exact)) if exact else None,
        n_gold=len(exact),
        kappa_vs_consensus=kappa,
        n_with_consensus=len(consensus_sets),
        median_time_s=median,
        p90_time_s=p90,
        labels_per_day=labels_per_day(labels["created_at"]) if "created_at" in labels else None,
        class_distribution={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
        class_usage=usage,
    )



def finding_counts(
    labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]
) -> tuple[int, int, int, int]:
    """(true positives, present findings, true negatives, absent findings) of a labeler's sets on gold items."""
    on, sets = _on(labels, truth)
    if not sets:
        return 0, 0, 0, 0
    given = to_indicator(on["label"].tolist(), classes).astype(bool)
    true = to_indicator(sets, classes).astype(bool)
    return int((given & true).sum()), int(true.sum()), int((~given & ~true).sum()), int((~true).sum())


def set_gold_counts(labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> tuple[int, int]:
    """(successes, trials) of the gold gate for sets: sensitivity (findings caught) or specificity (absent classes
    left unticked), whichever has the lower 95% Wilson upper bound, i.e. is nearer to failing."""
    tp, present, tn, absent = finding_counts(labels, truth, classes)
    candidates = [(c, n) for c, n in ((tp, present), (tn, absent)) if n > 0]
    if not candidates:
        return 0, 0
    return min(candidates, key=lambda cn: (wilson_interval(*cn)[1], cn[0] / cn[1]))


def set_gold_gate_name(labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str]) -> str:
    """What :func:`set_gold_counts` counted, in words for a check's reason ("gold accuracy" would be untrue)."""
    tp, present, tn, absent = finding_counts(labels, truth, classes)
    if set_gold_counts(labels, truth, classes) == (tp, present) and present:
        return "sensitivity on gold (findings ticked)"
    return "specificity on gold (absent classes left unticked)"
