"""How the QA report reads box answers (``BoxesKind.qa_view``): the drift chart by the classes present in an answer,
the agreement chart by the pairwise F1 of the drawn boxes (IoU 0.5), gold by whole answers matched box for box,
and a table of the least confident items with each labeler's box count, where labelers disagree.

A box answer is a drawing: two answers to one object never have equal text, so the report's own rule for gold
(an answer equal to gold as text) and the class views' kappa would read every box answer as wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.review_routing import DEFAULT_LOW_CONFIDENCE_THRESHOLD
from labeling_assets.core.reporting.answer_views import AnswerView
from labeling_assets.core.tasks.boxes.agreement import box_agreement
from labeling_assets.core.tasks.boxes.answers import by_item, valid_box_answers, vote_frames
from labeling_assets.core.tasks.boxes.gold import GOLD_IOU, gold_box_score, gold_frame
from labeling_assets.core.tasks.boxes.matching import assign
from labeling_assets.core.tasks.boxes.stats import box_labeler_stats
from labeling_assets.core.tasks.boxes.votes import answer_boxes

DOUBTFUL_ROWS = 30  # the least confident items shown (the histogram above shows them all)


def classes_present(labels: pd.Series) -> pd.Series:
    """Each answer as the sorted classes it has a box of ([] for "No object" or a value that is no box answer)."""

    def present(answer: Any) -> list[str]:
        if not isinstance(answer, Mapping) or not isinstance(answer.get("boxes"), list):
            return []
        return sorted({str(name) for box in answer["boxes"] if isinstance(box, Mapping)
                       for name in (box.get("labels") or [])})  # fmt: skip

    return pd.Series([present(a) for a in labels], index=labels.index, dtype=object)


def period_f1(votes: pd.DataFrame, classes: Sequence[str]) -> float | None:
    """The mean pairwise F1 of one period's box votes (:func:`.agreement.box_agreement`); None without a pair."""
    found, boxes = vote_frames(votes, classes)
    agreement = box_agreement(found, boxes, classes)
    return float(agreement.f1) if agreement.n_pairs and np.isfinite(agreement.f1) else None


def whole_answer_right(answer: Any, truth: Any, classes: Sequence[str]) -> bool:
    """Every gold box matched by a box of its class at IoU 0.5 and no other box drawn ("No object" for none)."""
    mine, why = answer_boxes(answer, classes)
    gold, gold_why = answer_boxes(truth, classes)
    if why is not None or gold_why is not None or len(mine) != len(gold):
        return False
    for name in {box[0] for box in mine} | {box[0] for box in gold}:
        a = np.array([box[1:] for box in mine if box[0] == name], dtype=float).reshape(-1, 4)
        b = np.array([box[1:] for box in gold if box[0] == name], dtype=float).reshape(-1, 4)
        if len(a) != len(b) or len(assign(a, b, GOLD_IOU)) != len(b):
            return False
    return True


def gold_correct(rows: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Per gold answer (``item_id, label``): :func:`whole_answer_right`."""
    right = [whole_answer_right(a, gold.get(item), classes) for item, a in zip(rows["item_id"], rows["label"], strict=True)]
    return pd.Series(right, index=rows.index, dtype=bool)


def gold_table(table: pd.DataFrame, annotations: pd.DataFrame, gold: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    """The whole-answer accuracy named as such, with each labeler's box gold score, precision and recall beside it."""
    on_gold = annotations[annotations["item_id"].isin(gold.index)]
    votes, boxes = vote_frames(on_gold, classes)
    truth, items = gold_frame(by_item(valid_box_answers(gold, classes)), classes)
    stats = box_labeler_stats(votes, boxes, truth, items).set_index("labeler_id")
    scores = gold_box_score(votes, boxes, truth, items).set_index("labeler_id")

    def shown(labeler: Any, column: str) -> str:
        value = stats[column].get(labeler, np.nan)
        return "n/a" if pd.isna(value) else f"{value:.3f}"

    def score(labeler: Any) -> str:
        n = int(scores["n"].get(labeler, 0))
        return "n/a" if not n else f"{int(scores['matched'][labeler]) / n:.3f}"

    shown_table = table.rename(columns={"gold_accuracy": "whole-answer accuracy"})
    return shown_table.assign(**{
        "box gold score": [score(lab) for lab in table["labeler_id"]],
        "box precision": [shown(lab, "precision") for lab in table["labeler_id"]],
        "box recall": [shown(lab, "recall") for lab in table["labeler_id"]],
    })  # fmt: skip


def _objects(answer: Any, classes: Sequence[str]) -> str:
    boxes, why = answer_boxes(answer, classes)
    if why is not None:
        return f"not counted ({why})"
    if not boxes:
        return "no object"
    counts = pd.Series([b[0] for b in boxes]).value_counts().sort_index()
    return ", ".join(f"{name} x{n}" for name, n in counts.items())


def doubtful_items(annotations: pd.DataFrame, consensus: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """The items whose consensus confidence is under the review threshold, least confident first: the objects
    consensus decided and what each labeler drew (their box count per class), where they disagree."""
    low = consensus[pd.to_numeric(consensus["confidence"], errors="coerce") < DEFAULT_LOW_CONFIDENCE_THRESHOLD]
    low = low.sort_values(["confidence", "item_id"], kind="stable").head(DOUBTFUL_ROWS)
    drawn = {item: g for item, g in annotations.groupby("item_id")}
    rows = []
    for item, label, confidence in zip(low["item_id"], low["label"], low["confidence"], strict=True):
        mine = drawn.get(item, annotations.iloc[:0]).sort_values("labeler_id", kind="stable")
        rows.append({
            "item": str(item)[:12],
            "confidence": float(confidence),
            "consensus objects": _objects(label, classes),
            "labelers' boxes": "; ".join(f"{who}: {_objects(a, classes)}" for who, a in zip(
                mine["labeler_id"], mine["label"], strict=True)) or "none",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["item", "confidence", "consensus objects", "labelers' boxes"])


BOX_VIEW = AnswerView(
    answers=classes_present,
    period_kappa=period_f1,
    gold_table=gold_table,
    gold_what="Whole-answer gold accuracy",
    gold_axis="whole-answer accuracy",
    gold_caption=(
        "Share of each labeler's answers to hidden gold items that are right box for box (every gold box matched at "
        "IoU 0.5 by a box of its class, no other box). Box gold score: matched boxes / (gold boxes + false boxes), "
        "what the labeler gate judges; precision and recall of their boxes against gold beside it"
    ),
    kappa_series="mean pairwise F1 of boxes",
    kappa_axis="F1 at IoU 0.5 (not a kappa)",
    kappa_caption=(
        "Mean over labeler pairs on shared items of one's boxes' F1 against the other's (matched per class at IoU "
        "0.5), per period: boxes have no chance agreement to correct for"
    ),
    drift_title="Share of answers with a box of each class, per {unit}",
    drift_axis="share of answers",
    drift_caption=(
        "Class distribution drift: the share of each period's answers with at least one box of each class (an answer "
        "can hold several classes or none, so the shares need not sum to 1)"
    ),
    confidence_caption=(
        "Consensus confidence per item: the probability that every box decision on the item is right (each "
        "candidate box kept or dropped), so one doubtful box is enough to lower it"
    ),
    agreement_answers=lambda labels: labels,
    gold_correct=gold_correct,
    doubtful_items=doubtful_items,
    doubtful_caption=(
        f"Items whose consensus confidence is under {DEFAULT_LOW_CONFIDENCE_THRESHOLD} (the review threshold), least "
        f"confident first (at most {DOUBTFUL_ROWS}): the objects consensus decided and each labeler's boxes per class"
    ),
)
