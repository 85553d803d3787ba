"""The gold gate and per-labeler gold score of the region kinds (boxes, text spans, audio segments).

Each scores an answer to a gold item as (matched regions, gold regions + false regions) with its own
``gold_counts(votes, truth, classes, only=None)``; the gate and the per-labeler score over those counts are the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from labeling_assets.core.consensus.gates import RateGate, gate


class GoldCounts(Protocol):
    """A kind's ``gold_counts``: (matched, gold + false) of the answers to the gold items; ``only``: one class."""

    def __call__(
        self, labels: pd.DataFrame, truth: pd.Series, classes: Sequence[str], /, only: str | None = None
    ) -> tuple[int, int]: ...


def region_gold_gate(
    counts: GoldCounts, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], threshold: float, what: str
) -> tuple[RateGate, dict[str, Any]]:
    """(the gate on the ``what`` gold score, per class: the same gate's metadata on that class's regions alone;
    a class no gold answer has a region of is left out)."""
    per_class: dict[str, Any] = {}
    for name in classes:
        matched, n = counts(votes, truth, classes, only=str(name))
        if n:
            per_class[str(name)] = gate(matched, n, threshold, what=f"{what} on {name}").metadata()
    return gate(*counts(votes, truth, classes), threshold, what=what), per_class


def labeler_gold_scores(
    counts: GoldCounts, votes: pd.DataFrame, truth: pd.Series, classes: Sequence[str], names: Mapping[str, str]
) -> dict[str, float | None]:
    """Each named labeler's gold score, matched / (gold + false) to 4 places (None: no gold region either way)."""
    scores: dict[str, float | None] = {}
    for labeler, mine in votes.groupby(votes["labeler_id"].astype(str)):
        if labeler in names:
            matched, n = counts(mine, truth, classes)
            scores[names[labeler]] = round(matched / n, 4) if n else None
    return scores


def whole_answer_table(
    counts: GoldCounts, column: str, table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series,
    classes: Sequence[str],
) -> pd.DataFrame:
    """A QA view's gold table: the whole-answer accuracy named as such, each labeler's gold score (3 places, "n/a"
    without a gold region either way) beside it as ``column``."""
    on_gold = annotations[annotations["item_id"].isin(gold.index)]

    def score(labeler: Any) -> str:
        correct, trials = counts(on_gold[on_gold["labeler_id"] == labeler], gold, classes)
        return "n/a" if not trials else f"{correct / trials:.3f}"

    shown = table.rename(columns={"gold_accuracy": "whole-answer accuracy"})
    return shown.assign(**{column: [score(lab) for lab in table["labeler_id"]]})
