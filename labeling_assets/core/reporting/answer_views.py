"""How the QA report reads and names the answers of a kind of task (``TaskKind.qa_view``): what its agreement and
class drift charts group by, how a period's agreement is measured, what its gold table shows, and the words of
its charts. The report itself never asks which kind it draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from labeling_assets.core.consensus.agreement import pairwise_cohen_kappa
from labeling_assets.core.reporting import qa_sets


@dataclass(frozen=True)
class AnswerView:
    """What the QA report needs to know about a kind's answers (the labels of ``annotations`` as stored)."""

    answers: Callable[[pd.Series], pd.Series]  # stored labels -> what the agreement and drift charts group by
    period_kappa: Callable[[pd.DataFrame, Sequence[str]], float | None]  # one period's votes -> its agreement
    gold_table: Callable[[pd.DataFrame, pd.DataFrame, pd.Series, Sequence[str]], pd.DataFrame]
    gold_what: str  # chart title: "<gold_what> per labeler"
    gold_axis: str
    gold_caption: str
    kappa_series: str
    kappa_axis: str
    kappa_caption: str
    drift_title: str  # "{unit}" is the period
    drift_axis: str
    drift_caption: str
    confidence_caption: str
    # What the agreement chart reads when not ``answers`` (boxes: the drawn boxes; ``answers`` are the classes present).
    agreement_answers: Callable[[pd.Series], pd.Series] | None = None
    # Per gold answer (``item_id, labeler_id, label`` as stored), whether it is right; None: equal to gold as text.
    gold_correct: Callable[[pd.DataFrame, pd.Series, Sequence[str]], pd.Series] | None = None
    # The least confident consensus items as a table (stored annotations, consensus rows, classes); None: no table.
    doubtful_items: Callable[[pd.DataFrame, pd.DataFrame, Sequence[str]], pd.DataFrame] | None = None
    doubtful_caption: str = ""


def _class_kappa(votes: pd.DataFrame, classes: Sequence[str]) -> float | None:
    """Mean pairwise Cohen's kappa of labelers with at least 5 items in common; None when undefined."""
    pairs = pairwise_cohen_kappa(votes[["item_id", "labeler_id", "label"]], min_common=5)
    return float(pairs["kappa"].mean()) if not pairs.empty and pairs["kappa"].notna().any() else None


def _class_gold_table(
    gold_table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series, classes: Sequence[str]
) -> pd.DataFrame:
    return gold_table


def _set_gold_table(
    gold_table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series, classes: Sequence[str]
) -> pd.DataFrame:
    """Exact-set accuracy named as such, each labeler's sensitivity and specificity on gold beside it."""
    rates = qa_sets.finding_rates(annotations[annotations["item_id"].isin(gold.index)], gold, classes)
    for column in ("sensitivity", "specificity"):
        rates[column] = rates[column].map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
    shown = gold_table.rename(columns={"gold_accuracy": "exact-set accuracy"})
    return shown.merge(rates, on="labeler_id", how="left")


# One class per answer: its name.
CLASS_VIEW = AnswerView(
    answers=lambda labels: labels.astype(str),
    period_kappa=_class_kappa,
    gold_table=_class_gold_table,
    gold_what="Gold accuracy",
    gold_axis="accuracy",
    gold_caption="Accuracy on hidden gold items per labeler",
    kappa_series="mean pairwise κ",
    kappa_axis="Cohen's κ",
    kappa_caption="Mean pairwise Cohen's kappa per period",
    drift_title="Class share of labels per period",
    drift_axis="share",
    drift_caption="Class distribution drift: share of each class per period",
    confidence_caption="Consensus confidence per item",
)

# A set of classes per answer (a sorted list; [] is "none of these").
SET_VIEW = AnswerView(
    answers=lambda labels: labels.copy(),
    period_kappa=qa_sets.per_class_kappa,
    gold_table=_set_gold_table,
    gold_what="Exact-set accuracy",
    gold_axis="exact-set accuracy",
    gold_caption=(
        "Exact-set accuracy on hidden gold items per labeler (every class of the set right). Sensitivity: the share "
        "of the gold items' findings the labeler ticked; specificity: the share of absent classes they left "
        "unticked (pooled over classes; the labeler gate judges the worse of the two)"
    ),
    kappa_series="mean per-class pairwise κ",
    kappa_axis="Cohen's κ (mean over classes)",
    kappa_caption=(
        "Mean pairwise Cohen's kappa per period, computed per class (ticked or not) and averaged over classes and "
        "labeler pairs"
    ),
    drift_title="Share of answers that tick each class, per {unit}",
    drift_axis="share of answers",
    drift_caption=(
        "Class distribution drift: the share of each period's answers that tick each class (an answer can tick "
        "several classes or none, so the shares need not sum to 1)"
    ),
    confidence_caption=(
        "Consensus confidence per item: for a label set, the product over classes of max(p, 1 - p), p the "
        "consensus probability that the class is present: the chance that the whole set is right, so one "
        "doubtful class is enough to lower it"
    ),
)
