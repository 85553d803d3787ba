"""Shared reads of the label store: votes, the latest consensus, gold answers, item files.

Consensus, labeler statistics, label issues, the QA report and their checks read the same things the
same way; these functions are that one way (the rules that turn rows into votes are in
``core/consensus/votes.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.class_schema import map_answer
from labeling_assets.core.consensus.leaderboard import QualityInputs
from labeling_assets.core.consensus.votes import Votes
from labeling_assets.core.label_sets import SINGLE_LABEL, outside_class_list
from labeling_assets.core.store.class_changes import class_mapping, read_through
from labeling_assets.core.store.current_cache import current_annotations_cached
from labeling_assets.core.store.human_loop import adjudicated_labels
from labeling_assets.core.store.schema import (
    LabelStore,
    items_table,
    labeler_stats_table,
    latest_consensus_query,
    tasks_table,
)
from labeling_assets.core.tasks.registry import task_kind

QUARANTINED = "quarantined"  # items.status of an item whose bytes are unusable
SUPERSEDED = "superseded"  # items.status of an item whose source file changed (a new item replaced it)
ANNOTATION_COLUMNS = ["ls_annotation_id", "item_id", "labeler_id", "label", "lead_time_s", "created_at", "updated_at"]
CONSENSUS_COLUMNS = ["item_id", "label", "method", "confidence", "agreement", "n_annotators", "version", "computed_at"]


@dataclass(frozen=True)
class StoreVotes:
    """Votes read from the label store, with what was left out and why."""

    votes: Votes
    statuses: dict[str, str]  # item_id -> items.status
    excluded_quarantined: int  # votes on quarantined items
    excluded_unknown_item: int  # votes on item ids the store does not know
    excluded_superseded: int = 0  # votes on items replaced by a changed source file: they count for nothing
    held: dict[str, int] = field(default_factory=dict)  # item_id -> labelers with a current annotation


def current_annotations(store: LabelStore) -> pd.DataFrame:
    """Every current annotation (latest version, not deleted), with the columns even when there is none; its
    label read through the recorded class renames and merges (``class_changes.read_through``).

    Read in bulk from a snapshot kept up to date (``current_cache``): what every consensus, stats and dataset
    run reads first.
    """
    rows = current_annotations_cached(store)
    # Renamed and merged classes: each answer reads as the class it became (the rows stay as given).
    return read_through(store, rows) if not rows.empty else pd.DataFrame(columns=ANNOTATION_COLUMNS)


def load_votes(
    store: LabelStore, classes: list[str], *, task_type: str = SINGLE_LABEL, allow_empty: bool = True,
    allow_overlap: bool = False,
) -> StoreVotes:
    """One valid vote per (item, labeler) on items that are neither quarantined nor superseded.

    A superseded item's votes were given on bytes that are no longer at its source path: they count for
    nothing current (consensus, labeler statistics), while the annotation rows stay in the log. In a
    multi-label project (``task_type``) a vote is a label set (sorted list, ``latest_set_votes``).
    """
    statuses = {r["item_id"]: r["status"] for r in store.fetch(sa.select(items_table.c.item_id, items_table.c.status))}
    current = current_annotations(store)
    held = current.groupby("item_id")["labeler_id"].nunique() if not current.empty else pd.Series(dtype=int)
    votes = task_kind(task_type).votes(current, classes, allow_empty, allow_overlap=allow_overlap)
    status = votes.frame["item_id"].map(statuses)
    quarantined = (status == QUARANTINED).to_numpy()
    superseded = (status == SUPERSEDED).to_numpy()
    unknown = status.isna().to_numpy()
    frame = votes.frame[~quarantined & ~superseded & ~unknown].reset_index(drop=True)
    return StoreVotes(
        votes=Votes(frame, votes.skipped, votes.examples),
        statuses=statuses,
        excluded_quarantined=int(quarantined.sum()),
        excluded_unknown_item=int(unknown.sum()),
        excluded_superseded=int(superseded.sum()),
        held={str(k): int(v) for k, v in held.items()},
    )


def consensus_frame(store: LabelStore) -> pd.DataFrame:
    """The newest consensus row per item (item_id, label, method, confidence, agreement, ...)."""
    rows = store.fetch(latest_consensus_query())
    if not rows:
        return pd.DataFrame(columns=CONSENSUS_COLUMNS)
    return pd.DataFrame(rows)[CONSENSUS_COLUMNS]


def gold_labels(store: LabelStore, item_ids: Iterable[str] | None = None) -> pd.Series:
    """item_id -> hidden gold label as stored (a class name, or a list for multi-label gold), of every gold item
    or only of those in ``item_ids``."""
    rows = store.fetch(
        sa.select(items_table.c.item_id, items_table.c.gold_label).where(items_table.c.gold_label.is_not(None))
    )
    wanted = set(item_ids) if item_ids is not None else None
    mapping = class_mapping(store)  # gold of a renamed or merged class reads as the class it became
    return pd.Series(
        {r["item_id"]: map_answer(r["gold_label"], mapping) for r in rows if wanted is None or r["item_id"] in wanted},
        dtype=object,
    )


def item_uris(store: LabelStore, *, exclude_quarantined: bool = False) -> dict[str, str | None]:
    """item_id -> the stored copy of its bytes (None when there is none)."""
    query = sa.select(items_table.c.item_id, items_table.c.uri)
    if exclude_quarantined:
        query = query.where(items_table.c.status != QUARANTINED)
    return {r["item_id"]: r["uri"] for r in store.fetch(query)}


def quarantined_items_with_consensus(store: LabelStore) -> list[str]:
    """Quarantined items that still have a consensus row (sorted)."""
    latest = latest_consensus_query().subquery()
    rows = store.fetch(
        sa.select(latest.c.item_id)
        .join(items_table, items_table.c.item_id == latest.c.item_id)
        .where(items_table.c.status == QUARANTINED)
        .order_by(latest.c.item_id)
    )
    return [row["item_id"] for row in rows]


def consensus_outside_class_list(
    store: LabelStore, classes: list[str], *, task_type: str = SINGLE_LABEL
) -> list[dict[str, Any]]:
    """Live consensus rows whose label names a class outside ``classes`` (item_id, label), by item: the classes a
    label names are the kind's reading of it (``classes_of``: a box answer names its boxes' classes); a label that
    names none is stale unless it is an answer of the kind (the empty set, "No object")."""
    kind = task_kind(task_type)
    rows = store.fetch(latest_consensus_query().order_by("item_id"))
    return [{"item_id": r["item_id"], "label": r["label"]} for r in rows if outside_class_list(kind, r["label"], classes)]


def load_quality_inputs(
    store: LabelStore, classes: list[str], *, task_type: str = SINGLE_LABEL, allow_empty: bool = True,
    allow_overlap: bool = False,
) -> QualityInputs:
    """Votes, gold answers and consensus labels, for labeler statistics (label sets in a multi-label project)."""
    votes = load_votes(store, classes, task_type=task_type, allow_empty=allow_empty,
                       allow_overlap=allow_overlap).votes.frame  # fmt: skip
    if getattr(task_kind(task_type), "reads_item_uris", False):  # text_edits: unchanged answers need the machine text
        uris = item_uris(store)
        votes = votes.assign(uri=pd.Series([uris.get(str(i)) for i in votes["item_id"]], index=votes.index, dtype=object))
    rows = consensus_frame(store)
    consensus = pd.Series(rows["label"].to_numpy(dtype=object), index=rows["item_id"], dtype=object)
    inputs: QualityInputs = task_kind(task_type).quality_inputs(
        votes, gold_labels(store), adjudicated_labels(store), consensus, classes
    )
    return inputs


def record_labeler_stats(store: LabelStore, rows: list[dict[str, Any]]) -> None:
    """Append labeler_stats rows (each already has its computed_at)."""
    with store.begin() as conn:
        conn.execute(labeler_stats_table.insert(), rows)


def latest_labeler_stats(store: LabelStore, labeler_id: str, window: str) -> dict[str, Any] | None:
    """The newest labeler_stats row of a labeler and window, or None before labeler_stats ran for them."""
    t = labeler_stats_table
    rows = store.fetch(
        sa.select(t)
        .where(t.c.labeler_id == labeler_id, t.c.window == window)
        .order_by(t.c.computed_at.desc(), t.c.id.desc())
        .limit(1)
    )
    return dict(rows[0]) if rows else None


def unqueued_item_count(store: LabelStore, project_id: int | list[int] | None) -> int:
    """Active items with no task in Label Studio project ``project_id`` (or in any of these: blind mode) yet (all
    active items when None)."""
    query = sa.select(sa.func.count()).select_from(items_table).where(items_table.c.status == "active")
    if project_id is not None:
        ids = [project_id] if isinstance(project_id, int) else project_id
        queued = sa.select(tasks_table.c.item_id).where(tasks_table.c.ls_project_id.in_(ids))
        query = query.where(items_table.c.item_id.notin_(queued))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)
