"""Multi-label evaluation (numpy only, like ``metrics``): per-label ROC-AUC and AP, macro/micro averages,
set metrics at per-class thresholds, ranking metrics, ROC curve data and a per-label bar plot.

Conventions (scikit-learn's definitions, so numbers compare):
- ``y_true`` is an (n, K) 0/1 indicator matrix, ``probs`` the (n, K) per-class probabilities (sigmoids);
- a label's AUC is undefined (NaN, shown as "undefined") without a positive or without a negative in
  ``y_true``, its AP is undefined without a positive; macro averages use the labels where they are defined;
- macro F1/precision/recall use the labels that occur in the truth or in the predictions (as the
  single-label ``metrics.macro_f1``); zero divisions give 0;
- label-ranking average precision gives a row with no or every label 1, coverage error gives a row with
  no label 0 (as scikit-learn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labeling_assets.core.display import md_table, md_text
from labeling_assets.core.training.metrics import _average_ranks, _safe_divide
from labeling_assets.core.training.types import AnyArray

UNDEFINED = "undefined"
ROC_POINTS = 101  # ROC curve data per label is resampled to this many FPR points (plots, JSON metadata)


def _check(y_true: AnyArray, probs: AnyArray) -> tuple[AnyArray, AnyArray]:
    truth = np.asarray(y_true)
    scores = np.asarray(probs, dtype=np.float64)
    if truth.ndim != 2 or truth.shape != scores.shape:
        raise ValueError(f"y_true {truth.shape} and probs {scores.shape} must both be (n_items, n_labels)")
    return truth > 0, scores


def binary_auc(truth: AnyArray, scores: AnyArray) -> float:
    """ROC-AUC of one label (Mann-Whitney with tied scores at their mean rank); NaN when undefined."""
    truth = np.asarray(truth, dtype=bool)
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_average_precision(truth: AnyArray, scores: AnyArray) -> float:
    """Average precision of one label, sum over distinct thresholds of (R_n - R_{n-1}) * P_n; NaN
    without a positive."""
    truth = np.asarray(truth, dtype=bool)
    positives = int(truth.sum())
    if positives == 0:
        return float("nan")
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    cut = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    tps = np.cumsum(truth[order])[cut]
    precision = tps / (cut + 1)
    recall = tps / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(truth: AnyArray, scores: AnyArray) -> tuple[AnyArray, AnyArray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1); empty arrays when undefined."""
    truth = np.asarray(truth, dtype=bool)
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.zeros(0), np.zeros(0)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    cut = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    tps = np.cumsum(truth[order])[cut]
    fps = cut + 1 - tps
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos]


def macro_auc_and_map(y_true: AnyArray, probs: AnyArray) -> tuple[float, float]:
    """Macro ROC-AUC and macro average precision over the labels where each is defined (NaN if none)."""
    truth, scores = _check(y_true, probs)
    aucs = np.array([binary_auc(truth[:, k], scores[:, k]) for k in range(truth.shape[1])])
    aps = np.array([binary_average_precision(truth[:, k], scores[:, k]) for k in range(truth.shape[1])])
    return _nanmean(aucs), _nanmean(aps)


def _nanmean(values: AnyArray) -> float:
    defined = ~np.isnan(values)
    return float(values[defined].mean()) if defined.any() else float("nan")


@dataclass(frozen=True)
class LabelCounts:
    """Per-label confusion counts at the decision thresholds (arrays indexed by label)."""

    tp: AnyArray
    fp: AnyArray
    fn: AnyArray
    tn: AnyArray

    @property
    def precision(self) -> AnyArray:
        return _safe_divide(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> AnyArray:
        return _safe_divide(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> AnyArray:
        return _safe_divide(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def present(self) -> AnyArray:
        """Labels in the truth or the predictions (the ones macro F1/precision/recall use)."""
        return (self.tp + self.fn + self.fp) > 0


def label_counts(y_true: AnyArray, y_pred: AnyArray) -> LabelCounts:
    """tp/fp/fn/tn per label from 0/1 truth and predicted sets."""
    truth, pred = np.asarray(y_true) > 0, np.asarray(y_pred) > 0
    if truth.shape != pred.shape or truth.ndim != 2:
        raise ValueError(f"y_true {truth.shape} and y_pred {pred.shape} must both be (n_items, n_labels)")
    return LabelCounts(
        tp=(truth & pred).sum(axis=0).astype(np.int64),
        fp=(~truth & pred).sum(axis=0).astype(np.int64),
        fn=(truth & ~pred).sum(axis=0).astype(np.int64),
        tn=(~truth & ~pred).sum(axis=0).astype(np.int64),
    )


def macro_f1_multilabel(y_true: AnyArray, y_pred: AnyArray) -> float:
    """Mean F1 over the labels present in the truth or the predictions (0 when none is)."""
    counts = label_counts(y_true, y_pred)
    return float(counts.f1[counts.present].mean()) if counts.present.any() else 0.0


def hamming_loss(y_true: AnyArray, y_pred: AnyArray) -> float:
    """Share of (item, label) decisions that are wrong."""
    truth, pred = np.asarray(y_true) > 0, np.asarray(y_pred) > 0
    return float((truth != pred).mean()) if truth.size else 0.0


def exact_match_ratio(y_true: AnyArray, y_pred: AnyArray) -> float:
    """Share of items whose predicted set is exactly the true set (the empty set included)."""
    truth, pred = np.asarray(y_true) > 0, np.asarray(y_pred) > 0
    return float((truth == pred).all(axis=1).mean()) if len(truth) else 0.0


def label_ranking_average_precision(y_true: AnyArray, probs: AnyArray) -> float:
    """For each true label of an item, the share of labels ranked at or above it that are true; averaged
    over the item's true labels, then over items (a row with no or every label scores 1)."""
    truth, scores = _check(y_true, probs)
    if not len(truth):
        return 0.0
    total = 0.0
    n_labels = truth.shape[1]
    for row_truth, row_scores in zip(truth, scores, strict=True):
        relevant = np.flatnonzero(row_truth)
        if len(relevant) in (0, n_labels):
            total += 1.0
            continue
        at_or_above = row_scores[None, :] >= row_scores[relevant][:, None]  # (relevant, labels)
        rank = at_or_above.sum(axis=1)
        relevant_above = (at_or_above & row_truth[None, :]).sum(axis=1)
        total += float((relevant_above / rank).mean())
    return total / len(truth)


def coverage_error(y_true: AnyArray, probs: AnyArray) -> float:
    """How far down the ranking one must go, on average, to cover every true label (a row without a
    true label counts 0)."""
    truth, scores = _check(y_true, probs)
    if not len(truth):
        return 0.0
    lowest_true = np.where(truth, scores, np.inf).min(axis=1)
    coverage = (scores >= lowest_true[:, None]).sum(axis=1)
    coverage[~truth.any(axis=1)] = 0
    return float(coverage.mean())


@dataclass(frozen=True)
class MultiLabelReport:
    """Everything the evaluation stage reports about a multi-label model on one labelled set."""

    classes: list[str]
    n_items: int
    thresholds: AnyArray
    auc_per_label: AnyArray  # NaN: undefined (no positive or no negative)
    ap_per_label: AnyArray  # NaN: undefined (no positive)
    prevalence: AnyArray  # positives per label in the truth
    counts: LabelCounts
    macro_auc: float
    micro_auc: float
    macro_map: float
    micro_map: float
    macro_f1: float
    micro_f1: float
    macro_precision: float
    micro_precision: float
    macro_recall: float
    micro_recall: float
    hamming_loss: float
    exact_match: float
    lrap: float
    coverage_error: float
    roc: dict[str, dict[str, list[float]]] = field(repr=False)

    @property
    def undefined_labels(self) -> list[str]:
        """Labels whose AUC is undefined on this set (no positive or no negative)."""
        return [name for name, auc in zip(self.classes, self.auc_per_label, strict=True) if np.isnan(auc)]

    def scalar_metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{name: value}`` for MLflow; undefined (NaN) values are left out."""
        out = {
            "macro_auc": self.macro_auc,
            "micro_auc": self.micro_auc,
            "macro_map": self.macro_map,
            "micro_map": self.micro_map,
            "macro_f1": self.macro_f1,
            "micro_f1": self.micro_f1,
            "macro_precision": self.macro_precision,
            "micro_precision": self.micro_precision,
            "macro_recall": self.macro_recall,
            "micro_recall": self.micro_recall,
            "hamming_loss": self.hamming_loss,
            "exact_match": self.exact_match,
            "lrap": self.lrap,
            "coverage_error": self.coverage_error,
        }
        for k, name in enumerate(self.classes):
            out[f"auc_{name}"] = float(self.auc_per_label[k])
            out[f"ap_{name}"] = float(self.ap_per_label[k])
            out[f"f1_{name}"] = float(self.counts.f1[k])
        return {f"{prefix}{k}": float(v) for k, v in out.items() if not math.isnan(v)}

    def per_label_markdown(self) -> str:
        """A Markdown table per label: positives, threshold, tp/fp/fn/tn, precision, recall, F1, AUC, AP."""
        c = self.counts
        rows = [
            (md_text(name), int(self.prevalence[k]), f"{self.thresholds[k]:.3f}", c.tp[k], c.fp[k], c.fn[k], c.tn[k])
            + tuple(f"{value:.3f}" for value in (c.precision[k], c.recall[k], c.f1[k]))
            + (_text(self.auc_per_label[k]), _text(self.ap_per_label[k]))
            for k, name in enumerate(self.classes)
        ]
        columns = ["label", "positives", "threshold", "tp", "fp", "fn", "tn", "precision", "recall", "F1", "AUC", "AP"]
        return md_table(columns, rows)

    def summary_markdown(self) -> str:
        """The averaged metrics as a two-column Markdown table (undefined ones say so)."""
        rows = [
            ("macro ROC-AUC", self.macro_auc),
            ("micro ROC-AUC", self.micro_auc),
            ("macro mAP", self.macro_map),
            ("micro AP", self.micro_map),
            ("macro F1", self.macro_f1),
            ("micro F1", self.micro_f1),
            ("macro precision", self.macro_precision),
            ("micro precision", self.micro_precision),
            ("macro recall", self.macro_recall),
            ("micro recall", self.micro_recall),
            ("Hamming loss", self.hamming_loss),
            ("exact-match ratio", self.exact_match),
            ("label-ranking AP", self.lrap),
            ("coverage error", self.coverage_error),
        ]
        return md_table(["metric", "value"], [(name, _text(value)) for name, value in rows])


def _text(value: float) -> str:
    return UNDEFINED if math.isnan(value) else f"{value:.3f}"


def evaluate_multilabel(
    y_true: AnyArray, probs: AnyArray, classes: list[str], thresholds: AnyArray | list[float] | None = None
) -> MultiLabelReport:
    """Every multi-label metric from true sets (n, K) and per-class probabilities at ``thresholds``
    (0.5 for every class when None)."""
    truth, scores = _check(y_true, probs)
    k = len(classes)
    if truth.shape[1] != k:
        raise ValueError(f"{truth.shape[1]} label columns but {k} classes")
    cut = np.full(k, 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if cut.shape != (k,):
        raise ValueError(f"{cut.size} thresholds for {k} classes")
    pred = scores >= cut[None, :]
    counts = label_counts(truth, pred)
    aucs = np.array([binary_auc(truth[:, j], scores[:, j]) for j in range(k)])
    aps = np.array([binary_average_precision(truth[:, j], scores[:, j]) for j in range(k)])
    present = counts.present
    tp, fp, fn = int(counts.tp.sum()), int(counts.fp.sum()), int(counts.fn.sum())

    def macro(values: AnyArray) -> float:
        return float(values[present].mean()) if present.any() else 0.0

    roc: dict[str, dict[str, list[float]]] = {}
    grid = np.linspace(0.0, 1.0, ROC_POINTS)
    for j, name in enumerate(classes):
        fpr, tpr = roc_curve(truth[:, j], scores[:, j])
        if len(fpr):
            # The step curve's TPR at each grid FPR (the highest TPR reached at or below it).
            tpr_grid = tpr[np.searchsorted(fpr, grid, side="right") - 1]
            roc[name] = {"fpr": grid.round(4).tolist(), "tpr": tpr_grid.round(4).tolist()}
    return MultiLabelReport(
        classes=list(classes),
        n_items=len(truth),
        thresholds=cut,
        auc_per_label=aucs,
        ap_per_label=aps,
        prevalence=truth.sum(axis=0).astype(np.int64),
        counts=counts,
        macro_auc=_nanmean(aucs),
        micro_auc=binary_auc(truth.ravel(), scores.ravel()),
        macro_map=_nanmean(aps),
        micro_map=binary_average_precision(truth.ravel(), scores.ravel()),
        macro_f1=macro(counts.f1),
        micro_f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        macro_precision=macro(counts.precision),
        micro_precision=tp / (tp + fp) if tp + fp else 0.0,
        macro_recall=macro(counts.recall),
        micro_recall=tp / (tp + fn) if tp + fn else 0.0,
        hamming_loss=hamming_loss(truth, pred),
        exact_match=exact_match_ratio(truth, pred),
        lrap=label_ranking_average_precision(truth, scores),
        coverage_error=coverage_error(truth, scores),
        roc=roc,
    )


def bar_tick_labels(report: MultiLabelReport) -> list[str]:
    """Each label with its positives under it: an AUC of 1.0 from one positive is not a finding."""
    return [f"{name}\n(n={int(report.prevalence[k])})" for k, name in enumerate(report.classes)]


def per_label_bar_png(report: MultiLabelReport, title: str = "Per-label ROC-AUC and AP") -> bytes:
    """Grouped bars per label: ROC-AUC and AP (an undefined value is drawn as a hatched empty bar); under each
    label its positives; the legend sits outside the axes so no bar hides behind it."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and the GPU machine
    import matplotlib.pyplot as plt

    from labeling_assets.core.reporting.plots import figure_png

    n = len(report.classes)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * n + 2.0), 3.5), dpi=100)
    try:
        series: list[tuple[str, Any, float]] = [
            ("ROC-AUC", report.auc_per_label, -0.2),
            ("AP", report.ap_per_label, 0.2),
        ]
        for name, values, offset in series:
            heights = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
            bars = ax.bar(x + offset, heights, 0.4, label=name)
            for bar, value in zip(bars, values, strict=True):
                if np.isnan(value):
                    bar.set_height(1.0)
                    bar.set_fill(False)
                    bar.set_hatch("//")
        ax.set_xticks(
            x, bar_tick_labels(report), rotation=45 if n > 10 else 0, ha="right" if n > 10 else "center"
        )
        ax.set_xlabel("label (n = items where it is present)", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(
            title
            + (
                f" (hatched: undefined for {', '.join(report.undefined_labels)})"
                if report.undefined_labels
                else ""
            ),
            fontsize=9,
        )
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure_png(fig, dpi=100)
    finally:
        plt.close(fig)  # a no-op after figure_png: closes a figure whose drawing failed
