"""How the QA report reads audio segment answers (``AudioSegmentsKind.qa_view``): the drift chart by the labels
present in an answer, the agreement chart by Krippendorff's alpha over 10 ms frames, gold by whole answers (every
gold region matched at IoU 0.5 with its label, no other region), with each labeler's gold score beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.reporting.answer_views import AnswerView
from labeling_assets.core.speech.regions import match_regions
from labeling_assets.core.tasks.audio_segments.agreement import frame_agreement
from labeling_assets.core.tasks.audio_segments.answers import answer_regions, from_stored
from labeling_assets.core.tasks.audio_segments.stats import gold_counts
from labeling_assets.core.tasks.audio_segments.votes import audio_votes, by_item, item_durations
from labeling_assets.core.tasks.region_gold import whole_answer_table


def labels_present(labels: pd.Series) -> pd.Series:
    """Each answer as the sorted labels it marks ([] for "no region" or a value that is no region answer)."""
    present = [sorted({r.label for r in from_stored(a) or ()}) for a in labels]
    return pd.Series(present, index=labels.index, dtype=object)


def period_alpha(votes: pd.DataFrame, classes: Sequence[str]) -> float | None:
    """Krippendorff's alpha over the frames of one period's votes; None without two labelers on an item."""
    _, found = audio_votes(votes, classes)
    items = by_item(found)
    agreement = frame_agreement(items, item_durations(votes.iloc[:0], items), classes)
    return float(agreement.alpha) if agreement.n_items and np.isfinite(agreement.alpha) else None


def whole_answer_right(answer: Any, truth: Any, classes: Sequence[str]) -> bool:
    """Every gold region matched (same label, IoU 0.5) and no other region marked ("no region" for none)."""
    mine, gold = answer_regions(answer, classes)[0], answer_regions(truth, classes)[0]
    if mine is None or gold is None or len(mine) != len(gold):
        return False
    return len(match_regions(mine, gold)) == len(gold)


def gold_correct(rows: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Per gold answer (``item_id, label``): :func:`whole_answer_right`."""
    right = [whole_answer_right(a, gold.get(i), classes) for i, a in zip(rows["item_id"], rows["label"], strict=True)]
    return pd.Series(right, index=rows.index, dtype=bool)


def gold_table(table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    """The whole-answer accuracy named as such, with each labeler's region gold score beside it."""
    return whole_answer_table(gold_counts, "region gold score", table, annotations, gold, classes)


SEGMENT_VIEW = AnswerView(
    answers=labels_present,
    period_kappa=period_alpha,
    gold_table=gold_table,
    gold_what="Whole-answer gold accuracy",
    gold_axis="whole-answer accuracy",
    gold_caption=(
        "Share of each labeler's answers to hidden gold items that mark exactly the gold regions (same label, IoU "
        "0.5, no other). Region gold score: matched regions / (gold regions + false regions), what the gate judges"
    ),
    kappa_series="Krippendorff's alpha over 10 ms frames",
    kappa_axis="frame alpha (nominal)",
    kappa_caption=(
        "Krippendorff's alpha of labelers' labels per 10 ms frame ('no region' a value) on shared items, per "
        "period: 1 is perfect agreement, 0 what chance gives"
    ),
    drift_title="Share of answers with a region of each label, per {unit}",
    drift_axis="share of answers",
    drift_caption=(
        "Label drift: the share of each period's answers marking at least one region of each label (an answer "
        "can mark several labels or none, so the shares need not sum to 1)"
    ),
    confidence_caption=(
        "Consensus confidence per item: the decided label's mean share of the (weighted) frame vote over the "
        "item's frames"
    ),
    agreement_answers=lambda labels: labels,
    gold_correct=gold_correct,
)
