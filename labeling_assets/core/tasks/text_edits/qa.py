"""How the QA report reads text edit answers (``TextEditsKind.qa_view``): the drift chart by answer length (a
crowd that starts submitting shorter texts drops words), the agreement chart by mean pairwise 1 - WER, gold by
whole answers (the gold text word for word), each labeler's 1 - WER on gold beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.reporting.answer_views import AnswerView
from labeling_assets.core.tasks.text_edits.answers import edit_votes, skip_reason, word_counts, words
from labeling_assets.core.tasks.text_edits.consensus import pairwise_agreement

LENGTH_BANDS = ((0, "empty"), (1, "1-5 words"), (6, "6-15 words"), (16, "16+ words"))


def length_band(value: Any) -> str | None:
    if skip_reason(value) is not None:
        return None
    n = len(words(str(value)))
    return next(name for low, name in reversed(LENGTH_BANDS) if n >= low)


def bands(labels: pd.Series) -> pd.Series:
    return pd.Series([length_band(v) for v in labels], index=labels.index, dtype=object)


def period_agreement(votes: pd.DataFrame, classes: Sequence[str]) -> float | None:
    """The mean over items answered twice or more of their mean pairwise 1 - WER; None without such an item."""
    frame = edit_votes(votes).frame
    scores = [pairwise_agreement({str(k): words(str(v)) for k, v in zip(g["labeler_id"], g["label"], strict=True)})
              for _, g in frame.groupby("item_id") if len(g) > 1]  # fmt: skip
    return float(np.mean(scores)) if scores else None


def gold_correct(rows: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Per gold answer: its words are the gold text's."""
    right = [skip_reason(a) is None and skip_reason(gold.get(i)) is None and words(str(a)) == words(str(gold.get(i)))
             for i, a in zip(rows["item_id"], rows["label"], strict=True)]  # fmt: skip
    return pd.Series(right, index=rows.index, dtype=bool)


def gold_table(table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    on_gold = annotations[annotations["item_id"].isin(gold.index)]

    def score(labeler: Any) -> str:
        right, total = word_counts(on_gold[on_gold["labeler_id"] == labeler], dict(gold.items()))
        return "n/a" if not total else f"{right / total:.3f}"

    shown = table.rename(columns={"gold_accuracy": "whole-answer accuracy"})
    return shown.assign(**{"1 - WER on gold": [score(lab) for lab in table["labeler_id"]]})


EDIT_VIEW = AnswerView(
    answers=bands,
    period_kappa=period_agreement,
    gold_table=gold_table,
    gold_what="Whole-answer gold accuracy",
    gold_axis="whole-answer accuracy",
    gold_caption=("Share of each labeler's answers to hidden gold items that are the gold text word for word. "
                  "1 - WER on gold: what the labeler gate judges"),  # fmt: skip
    kappa_series="mean pairwise 1 - WER",
    kappa_axis="1 - WER between labelers (not a kappa)",
    kappa_caption="Mean over items of the mean pairwise 1 - WER of their answers, per period",
    drift_title="Share of answers by length, per {unit}",
    drift_axis="share of answers",
    drift_caption="Answer length drift: the share of each period's answers in each length band (words)",
    confidence_caption="Consensus confidence per item: the mean over word slots of the winner's share of the vote",
    agreement_answers=lambda labels: labels,
    gold_correct=gold_correct,
)
