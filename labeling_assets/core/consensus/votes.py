"""Votes: one current, valid answer per (item, labeler), read from the label store's annotation rows.

Consensus and labeler statistics count votes, not annotations: a labeler who answered an item twice
has one vote (the newest), and an answer that is not exactly one class of the project is left out
(and counted) rather than replaced by an older one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labeling_assets.core.consensus.encoding import ConsensusInputError
from labeling_assets.core.display import bounded_label
from labeling_assets.core.label_sets import SKIP_UNREADABLE, LabelSetError, label_set

# Why an annotation row was not used as a vote (keys of Votes.skipped; the multi-label reasons are the
# SKIP_* keys of core/label_sets.py).
SKIP_MULTI_LABEL = "not_a_single_class"
SKIP_UNKNOWN_CLASS = "class_not_in_project"


@dataclass(frozen=True)
class Votes:
    """One vote per (item, labeler): the labeler's newest current annotation of the item.

    Attributes:
        frame: ``item_id, labeler_id, label`` plus whichever of ``ls_annotation_id, lead_time_s,
            created_at, updated_at`` the input had; sorted by item_id, labeler_id.
        skipped: reason -> number of (item, labeler) votes left out (their annotations stay stored).
        examples: reason -> up to five offending labels (each name bounded: ``display.bounded_label``), for
            error messages and metadata.
    """

    frame: pd.DataFrame
    skipped: dict[str, int]
    examples: dict[str, list[Any]]


def single_class(value: Any) -> Any | None:
    """The class of a single-choice label: ``"cat"`` or ``["cat"]`` -> ``"cat"``; anything else None."""
    if isinstance(value, list | tuple):
        value = value[0] if len(value) == 1 else None
    # Floats are never class names here (and NaN is how pandas spells a missing label).
    if value is None or isinstance(value, list | tuple | dict | float):
        return None
    return value


def _newest_per_labeler(annotations: pd.DataFrame) -> pd.DataFrame:
    """Each (item, labeler)'s newest annotation row (by ``updated_at``, then ``created_at``, then
    ``ls_annotation_id``), not yet validated: an invalid newest answer must not let an older one stand in."""
    missing = {"item_id", "labeler_id", "label"} - set(annotations.columns)
    if missing:
        raise ConsensusInputError(f"annotation rows lack column(s) {sorted(missing)}")
    extra = [c for c in ("ls_annotation_id", "lead_time_s", "created_at", "updated_at") if c in annotations]
    frame = annotations[["item_id", "labeler_id", "label", *extra]].copy()
    if frame.empty:
        return frame
    order: list[str] = []
    if "updated_at" in frame or "created_at" in frame:
        updated = frame["updated_at"] if "updated_at" in frame else pd.Series(pd.NaT, index=frame.index)
        stamp = pd.to_datetime(updated, utc=True, errors="coerce")
        if "created_at" in frame:
            stamp = stamp.fillna(pd.to_datetime(frame["created_at"], utc=True, errors="coerce"))
        frame["_stamp"] = stamp
        order.append("_stamp")
    if "ls_annotation_id" in frame:
        order.append("ls_annotation_id")
    if order:
        frame = frame.sort_values(order, kind="stable", na_position="first")
    return frame.drop_duplicates(["item_id", "labeler_id"], keep="last").drop(
        columns="_stamp", errors="ignore"
    )


def latest_votes(annotations: pd.DataFrame, classes: Sequence[Any]) -> Votes:
    """Reduce current annotation rows (``current_annotations_query``) to one valid vote per (item, labeler).

    A labeler may hold several Label Studio annotations of one item; the newest (by ``updated_at``, then
    ``created_at``, then ``ls_annotation_id``) is their vote. That newest one is then validated: a label
    that is not exactly one class of ``classes`` is skipped (counted in ``skipped``) rather than letting
    an older answer stand in for it.
    """
    frame = _newest_per_labeler(annotations)
    if frame.empty:
        return Votes(frame.reset_index(drop=True), {}, {})

    allowed = set(classes)
    raw = frame["label"].tolist()
    cleaned = [single_class(v) for v in raw]
    skipped: dict[str, int] = {}
    examples: dict[str, list[Any]] = {}
    keep = np.ones(len(frame), dtype=bool)
    for n, (original, value) in enumerate(zip(raw, cleaned, strict=True)):
        if original is None or (isinstance(original, float) and np.isnan(original)):  # stored without a label: its result was not an answer (the sync kept why)
            reason: str | None = SKIP_UNREADABLE
        else:
            reason = SKIP_MULTI_LABEL if value is None else None if value in allowed else SKIP_UNKNOWN_CLASS
        if reason:
            keep[n] = False
            skipped[reason] = skipped.get(reason, 0) + 1
            if len(examples.setdefault(reason, [])) < 5:
                examples[reason].append(bounded_label(original))
    frame["label"] = pd.Series(cleaned, index=frame.index, dtype=object)
    frame = frame[keep].sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
    return Votes(frame, skipped, examples)


def latest_set_votes(annotations: pd.DataFrame, classes: Sequence[str], *, allow_empty: bool = True) -> Votes:
    """Multi-label :func:`latest_votes`: one label set per (item, labeler), as a sorted list of class names.

    The same newest-answer rule; that newest answer is then validated by :func:`label_set`. A bare class
    name (``not_a_set``), a class outside ``classes`` (``class_not_in_project``), an empty set where the
    project offers no "none of these" (``empty_set_not_allowed``) and "none of these" chosen with findings
    (``none_with_classes``) are skipped and counted, never repaired; the annotation rows stay stored.
    """
    frame = _newest_per_labeler(annotations)
    if frame.empty:
        return Votes(frame.reset_index(drop=True), {}, {})
    skipped: dict[str, int] = {}
    examples: dict[str, list[Any]] = {}
    keep = np.ones(len(frame), dtype=bool)
    sets: list[list[str] | None] = []
    for n, value in enumerate(frame["label"].tolist()):
        try:
            sets.append(label_set(value, classes, allow_empty=allow_empty))
        except LabelSetError as err:
            sets.append(None)
            keep[n] = False
            skipped[err.reason] = skipped.get(err.reason, 0) + 1
            if len(examples.setdefault(err.reason, [])) < 5:
                examples[err.reason].append(bounded_label(value))
    frame["label"] = pd.Series(sets, index=frame.index, dtype=object)
    frame = frame[keep].sort_values(["item_id", "labeler_id"], kind="stable").reset_index(drop=True)
    return Votes(frame, skipped, examples)


def eligible_votes(votes: pd.DataFrame, min_annotators: int) -> pd.DataFrame:
    """Votes of the items with at least ``min_annotators`` distinct labelers."""
    per_item = votes.groupby("item_id")["labeler_id"].transform("nunique")
    return votes[(per_item >= min_annotators).to_numpy()].reset_index(drop=True)
