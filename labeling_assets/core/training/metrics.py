"""Classification metrics for model selection and evaluation (numpy only, so they run next to the
training loop on a GPU machine that has nothing but torch and numpy).

Conventions (the same as scikit-learn's defaults, so numbers compare):
- classes are integer indices ``0..n_classes-1``;
- a class that is neither in ``y_true`` nor in ``y_pred`` is left out of macro averages (it has no
  support and no predictions, so it can say nothing about the model); zero divisions give 0;
- one-vs-rest AUC is undefined (NaN) for a class with no positives or no negatives in ``y_true`` and is
  left out of the macro average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labeling_assets.core.display import md_table, md_text
from labeling_assets.core.training.types import AnyArray


def confusion_matrix(y_true: AnyArray, y_pred: AnyArray, n_classes: int) -> AnyArray:
    """``cm[i, j]`` = number of items of true class ``i`` predicted as ``j``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} holds a class index outside 0..{n_classes - 1}")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _safe_divide(numerator: AnyArray, denominator: AnyArray) -> AnyArray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@dataclass(frozen=True)
class PerClass:
    """Per-class precision, recall, F1 and support (arrays indexed by class)."""

    precision: AnyArray
    recall: AnyArray
    f1: AnyArray
    support: AnyArray
    predicted: AnyArray

    @property
    def present(self) -> AnyArray:
        """Classes that occur in the truth or in the predictions (the ones macro averages use)."""
        return (self.support > 0) | (self.predicted > 0)


def per_class_scores(cm: AnyArray) -> PerClass:
    """Precision, recall and F1 of every class from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return PerClass(precision, recall, f1, support.astype(np.int64), predicted.astype(np.int64))


def accuracy(y_true: AnyArray, y_pred: AnyArray) -> float:
    """Fraction of items predicted right (0 for no items)."""
    y_true = np.asarray(y_true)
    return float(np.mean(y_true == np.asarray(y_pred))) if y_true.size else 0.0


def macro_f1(y_true: AnyArray, y_pred: AnyArray, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in truth or predictions."""
    scores = per_class_scores(confusion_matrix(y_true, y_pred, n_classes))
    present = scores.present
    return float(scores.f1[present].mean()) if present.any() else 0.0


def _average_ranks(values: AnyArray) -> AnyArray:
    """1-based ranks with ties sharing their mean rank (what the Mann-Whitney AUC needs)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # Boundaries of runs of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def roc_auc_ovr(y_true: AnyArray, probs: AnyArray) -> tuple[AnyArray, float]:
    """One-vs-rest ROC AUC per class and their macro mean over the classes where it is defined."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = probs.shape[1]
    aucs = np.full(n_classes, np.nan)
    for k in range(n_classes):
        positive = y_true == k
        n_pos = int(positive.sum())
        n_neg = len(y_true) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _average_ranks(probs[:, k])
        aucs[k] = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    defined = ~np.isnan(aucs)
    return aucs, (float(aucs[defined].mean()) if defined.any() else float("nan"))


def expected_calibration_error(y_true: AnyArray, probs: AnyArray, n_bins: int = 15) -> float:
    """ECE of the top-class confidence over ``n_bins`` equal-width bins: sum of |accuracy - confidence|
    per bin weighted by the bin's share of items."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if not len(y_true):
        return 0.0
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    # Bins are (lo, hi]; a confidence of exactly 0 falls in the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.abs(correct_sum - conf_sum).sum() / len(y_true))


@dataclass(frozen=True)
class EvaluationReport:
    """Everything the evaluation stage reports about a model on one labelled set."""

    classes: list[str]
    n_items: int
    accuracy: float
    macro_f1: float
    macro_auc: float
    ece: float
    confusion: AnyArray
    per_class: PerClass
    auc_per_class: AnyArray = field(repr=False)

    def scalar_metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat ``{name: value}`` for MLflow (NaN AUCs left out: MLflow rejects them in some stores)."""
        out = {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}macro_f1": self.macro_f1,
            f"{prefix}ece": self.ece,
        }
        if not np.isnan(self.macro_auc):
            out[f"{prefix}macro_auc_ovr"] = self.macro_auc
        for k, name in enumerate(self.classes):
            out[f"{prefix}f1_{name}"] = float(self.per_class.f1[k])
        return out

    def per_class_markdown(self) -> str:
        """A Markdown table: class, support, precision, recall, F1, AUC."""
        pc = self.per_class
        aucs = ["n/a" if np.isnan(auc) else f"{auc:.3f}" for auc in self.auc_per_class]
        rows = [
            (md_text(name), pc.support[k], f"{pc.precision[k]:.3f}", f"{pc.recall[k]:.3f}", f"{pc.f1[k]:.3f}", aucs[k])
            for k, name in enumerate(self.classes)
        ]
        return md_table(["class", "support", "precision", "recall", "F1", "AUC (OvR)"], rows)


def evaluate_probs(
    y_true: AnyArray, probs: AnyArray, classes: list[str], n_bins: int = 15
) -> EvaluationReport:
    """All evaluation metrics from true class indices and predicted class probabilities."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(classes):
        raise ValueError(f"probs must be (n_items, {len(classes)}), got {probs.shape}")
    if probs.shape[0] != len(y_true):
        raise ValueError(f"{len(y_true)} labels but {probs.shape[0]} rows of probabilities")
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    per_class = per_class_scores(cm)
    aucs, macro_auc = roc_auc_ovr(y_true, probs)
    present = per_class.present
    return EvaluationReport(
        classes=list(classes),
        n_items=len(y_true),
        accuracy=accuracy(y_true, y_pred),
        macro_f1=float(per_class.f1[present].mean()) if present.any() else 0.0,
        macro_auc=macro_auc,
        ece=expected_calibration_error(y_true, probs, n_bins),
        confusion=cm,
        per_class=per_class,
        auc_per_class=aucs,
    )


def confusion_matrix_png(cm: AnyArray, classes: list[str], title: str = "Confusion matrix") -> bytes:
    """The confusion matrix as a PNG (rows: truth, columns: prediction; cells show counts)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and the GPU machine
    import matplotlib.pyplot as plt

    from labeling_assets.core.reporting.plots import figure_png

    cm = np.asarray(cm)
    n = len(classes)
    size = max(3.5, 0.45 * n + 1.5)
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    try:
        row_sums = cm.sum(axis=1, keepdims=True)
        share = np.divide(cm, row_sums, out=np.zeros(cm.shape, dtype=float), where=row_sums > 0)
        ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(n), classes, rotation=90 if n > 12 else 0)
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        if n <= 30:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        color = "white" if share[i, j] > 0.5 else "black"
                        ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7, color=color)
        return figure_png(fig, dpi=100)
    finally:
        plt.close(fig)  # a no-op after figure_png: closes a figure whose drawing failed
