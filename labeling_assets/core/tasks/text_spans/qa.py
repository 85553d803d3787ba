"""How the QA report reads span answers (``TextSpansKind.qa_view``): the drift chart by the entity types present in
an answer, the agreement chart by the pairwise span F1 (strict), gold by whole answers (every gold span marked at
its offsets with its type, no other), with each labeler's span gold score beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from labeling_assets.core.reporting.answer_views import AnswerView
from labeling_assets.core.tasks.region_gold import whole_answer_table
from labeling_assets.core.tasks.text_spans.answers import answer_spans, gold_counts, span_votes
from labeling_assets.core.tasks.text_spans.stats import span_agreement


def types_present(labels: pd.Series) -> pd.Series:
    """Each answer as the sorted entity types it marks ([] for "no entity" or a value that is no span answer)."""
    present = [sorted({str(x[2]) for x in a if isinstance(x, list | tuple) and len(x) == 3}) if isinstance(a, list)
               else [] for a in labels]  # fmt: skip
    return pd.Series(present, index=labels.index, dtype=object)


def period_f1(votes: pd.DataFrame, classes: Sequence[str]) -> float | None:
    """The pairwise span F1 of one period's votes; None without two labelers on an item."""
    _, found = span_votes(votes, classes)
    agreement = span_agreement(found)
    return agreement.f1 if agreement.n_pairs else None


def gold_correct(rows: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Per gold answer (``item_id, label``): its spans are exactly the gold spans."""
    def right(item: Any, answer: Any) -> bool:
        mine, truth = answer_spans(answer, classes)[0], answer_spans(gold.get(item), classes)[0]
        return mine is not None and truth is not None and set(mine) == set(truth)

    return pd.Series([right(i, a) for i, a in zip(rows["item_id"], rows["label"], strict=True)], index=rows.index,
                     dtype=bool)  # fmt: skip


def gold_table(table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    """The whole-answer accuracy named as such, with each labeler's span gold score beside it."""
    return whole_answer_table(gold_counts, "span gold score", table, annotations, gold, classes)


SPAN_VIEW = AnswerView(
    answers=types_present,
    period_kappa=period_f1,
    gold_table=gold_table,
    gold_what="Whole-answer gold accuracy",
    gold_axis="whole-answer accuracy",
    gold_caption=(
        "Share of each labeler's answers to hidden gold items that mark exactly the gold spans (same offsets and "
        "type, no other). Span gold score: matched spans / (gold spans + false spans), what the labeler gate judges"
    ),
    kappa_series="mean pairwise span F1",
    kappa_axis="strict span F1 (not a kappa)",
    kappa_caption=(
        "Pairwise F1 of labelers' spans on shared items (same offsets and type), micro-averaged per period: spans "
        "have no chance agreement to correct for"
    ),
    drift_title="Share of answers with a span of each type, per {unit}",
    drift_axis="share of answers",
    drift_caption=(
        "Entity type drift: the share of each period's answers marking at least one span of each type (an answer "
        "can mark several types or none, so the shares need not sum to 1)"
    ),
    confidence_caption=(
        "Consensus confidence per item: the probability that every span decision on the item is right and that no "
        "entity was missed by all its labelers"
    ),
    agreement_answers=lambda labels: labels,
    gold_correct=gold_correct,
)
