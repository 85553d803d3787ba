"""Dataset versions in the label store: the items a dataset may hold, frozen splits, stored manifests.

``dataset_splits`` writes a version (new split rows and, once per content hash, the manifest and card);
its checks and ``dataset_export`` read it back. The training chain's reads are in ``datasets.py``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.dataset.splits import is_single_label, manifest_from_json, normalize_label
from labeling_assets.core.label_sets import (
    SINGLE_LABEL,
    SKIP_UNKNOWN_IN_SET,
    LabelSetError,
    TaskType,
    label_set,
    outside_class_list,
)
from labeling_assets.core.store.schema import (
    LabelStore,
    dataset_versions_table,
    items_table,
    latest_consensus_query,
    splits_table,
    utcnow,
)
from labeling_assets.core.tasks.registry import task_kind

LABELED_COLUMNS = ["item_id", "label", "method", "confidence", "agreement", "status", "group_key", "gold_label"]


def labeled_items(
    store: LabelStore,
    classes: Sequence[str] | None = None,
    *,
    task_type: TaskType = SINGLE_LABEL,
    allow_empty: bool = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Live consensus per active item with its group key; counts of consensus items left out, by reason.

    A retracted consensus is not live (the item is not here at all); with ``classes``, a consensus whose
    label left the class list is left out too, even before consensus_labels has retracted it.
    """
    latest = latest_consensus_query().subquery("latest_consensus")
    query = sa.select(
        latest.c.item_id,
        latest.c.label,
        latest.c.method,
        latest.c.confidence,
        latest.c.agreement,
        items_table.c.status,
        items_table.c.group_key,
        items_table.c.gold_label,
    ).select_from(latest.outerjoin(items_table, items_table.c.item_id == latest.c.item_id))
    frame = pd.DataFrame(store.fetch(query), columns=LABELED_COLUMNS)
    return usable_labeled(frame, classes, task_type=task_type, allow_empty=allow_empty)


def usable_labeled(
    frame: pd.DataFrame,
    classes: Sequence[str] | None,
    *,
    task_type: TaskType = SINGLE_LABEL,
    allow_empty: bool = True,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows of ``frame`` (:data:`LABELED_COLUMNS`) a dataset may hold, and counts of the others by reason
    (shared by :func:`labeled_items` and the rebuild as of a time).

    Multi-label: the label becomes a sorted list of ``classes``; a consensus that is not a valid label set
    of the project (a bare class name, an unknown class, an empty set where "none of these" is not offered)
    is left out with its reason.
    """
    # Only active items go into a dataset: quarantined bytes are unusable, superseded ones were replaced
    # at their source path (their frozen split rows stay in the store for when they come back).
    status = frame["status"].fillna("not ingested")
    excluded = {f"item is {s}": int(n) for s, n in status[status != "active"].value_counts().items()}
    frame = frame[status == "active"].reset_index(drop=True)
    usable: tuple[pd.DataFrame, dict[str, int]] = task_kind(task_type).usable_labels(
        frame, list(classes) if classes is not None else None, allow_empty, excluded
    )
    return usable


def usable_classes(
    frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Single-label rows a dataset may hold: exactly one class, in the class list (when given)."""
    # A consensus that names no class or several cannot train a single-label model: leave the item out
    # (the card counts it) rather than block the whole dataset on it.
    single = frame["label"].map(is_single_label).astype(bool)
    if not single.all():
        excluded["consensus label is not exactly one class"] = int((~single).sum())
    frame = frame[single].reset_index(drop=True)
    if classes is not None:
        inside = frame["label"].map(lambda v: normalize_label(v) in set(map(str, classes))).astype(bool)
        if not inside.all():
            excluded["consensus label is not in the class list"] = int((~inside).sum())
        frame = frame[inside].reset_index(drop=True)
    return frame, excluded


_SET_REASONS = {SKIP_UNKNOWN_IN_SET: "consensus label is not in the class list"}


def usable_label_sets(
    frame: pd.DataFrame, classes: list[str] | None, allow_empty: bool, excluded: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Multi-label rows a dataset may hold: the label a valid label set of ``classes``, as a sorted list."""
    names = list(classes or [])
    labels: list[list[str] | None] = []
    for value in frame["label"]:
        try:
            labels.append(label_set(value, names, allow_empty=allow_empty))
        except LabelSetError as exc:
            reason = _SET_REASONS.get(exc.reason, f"consensus label is not a label set of the project ({exc.reason})")
            excluded[reason] = excluded.get(reason, 0) + 1
            labels.append(None)
    keep = pd.Series([v is not None for v in labels], index=frame.index, dtype=bool)
    out = frame[keep].reset_index(drop=True)
    out["label"] = pd.Series([v for v in labels if v is not None], dtype=object)
    return out, excluded


def departures(store: LabelStore, previous: pd.DataFrame, manifest: pd.DataFrame) -> dict[str, int]:
    """Items of the ``previous`` manifest that the new ``manifest`` no longer holds, counted by why:
    their consensus was retracted (by the kind of reason) or their item is no longer active."""
    gone = set(previous["item_id"]) - set(manifest["item_id"])
    if not gone:
        return {}
    latest = latest_consensus_query(include_retracted=True).subquery()
    rows = store.fetch(
        sa.select(latest.c.item_id, latest.c.retracted, latest.c.retraction_reason, items_table.c.status).select_from(
            latest.outerjoin(items_table, items_table.c.item_id == latest.c.item_id)
        )
    )
    why: dict[str, str] = {}
    for row in rows:
        if row["item_id"] not in gone:
            continue
        if row["retracted"]:
            why[row["item_id"]] = "consensus retracted: " + str(row["retraction_reason"] or "").split(":", 1)[0]
        elif row["status"] != "active":
            why[row["item_id"]] = f"item is {row['status']}"
    counts: dict[str, int] = {}
    for item in gone:
        reason = why.get(item, "label or class list changed")
        counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items()))


def manifest_items_not_live(
    store: LabelStore, manifest: pd.DataFrame, classes: Sequence[str], *, task_type: str = SINGLE_LABEL,
    machine: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Manifest rows that must not be in a dataset: the item is not active (superseded, quarantined, ...),
    its consensus is retracted or missing (except the ``machine`` tier's items, which have none by definition), or its
    label is not in the class list (as the kind reads it)."""
    kind = task_kind(task_type)
    statuses = {
        r["item_id"]: r["status"] for r in store.fetch(sa.select(items_table.c.item_id, items_table.c.status))
    }
    live = {r["item_id"] for r in store.fetch(sa.select(latest_consensus_query().subquery().c.item_id))}
    newest = latest_consensus_query(include_retracted=True).subquery()
    retracted = {r["item_id"] for r in store.fetch(sa.select(newest.c.item_id).where(newest.c.retracted.is_(True)))}
    bad = []
    for item, label in manifest[["item_id", "label"]].itertuples(index=False):
        problems = []
        if statuses.get(item) != "active":
            problems.append(f"item is {statuses.get(item) or 'not in the store'}")
        if item in machine:
            pass
        elif item in retracted:
            problems.append("consensus retracted")
        elif item not in live:
            problems.append("no consensus")
        if outside_class_list(kind, label, classes):
            problems.append(f"label {label!r} not in the class list")
        if problems:
            bad.append({"item_id": item, "label": str(label), "problems": problems})
    return bad


def frozen_splits(store: LabelStore) -> pd.Series:
    """item_id -> split of every item that was ever assigned one (assignments never change)."""
    frame = pd.DataFrame(
        store.fetch(sa.select(splits_table.c.item_id, splits_table.c.split)), columns=["item_id", "split"]
    )
    return frame.set_index("item_id")["split"]


def rows_of_items(store: LabelStore, table: sa.Table, columns: list[str], item_ids: list[str]) -> pd.DataFrame:
    """Rows of ``table`` for these items: one full-column read filtered in memory (one query, not one
    per chunk of ids: 10^6 items would otherwise cost thousands of round trips)."""
    frame = pd.DataFrame(store.fetch(sa.select(*(table.c[c] for c in columns))), columns=columns)
    return frame[frame["item_id"].isin(set(item_ids))].reset_index(drop=True)


def newest_version(store: LabelStore, *, other_than: str | None = None) -> str | None:
    """The most recently created dataset version (other than ``other_than``), or None."""
    query = sa.select(dataset_versions_table.c.dataset_version)
    if other_than is not None:
        query = query.where(dataset_versions_table.c.dataset_version != other_than)
    rows = store.fetch(query.order_by(dataset_versions_table.c.created_at.desc()).limit(1))
    return rows[0]["dataset_version"] if rows else None


def record_dataset_version(
    store: LabelStore,
    manifest: pd.DataFrame,
    version: str,
    *,
    class_weights: Mapping[str, float],
    manifest_json: dict[str, Any],
    card: str,
) -> bool:
    """Freeze the split of the manifest's new items and store the version once; True if it was new.

    Only new items (``is_new``) get a split row: an existing row is the frozen assignment and is never
    rewritten. A version already stored (same content hash) keeps its first manifest and card.
    """
    now = utcnow()
    new_rows = manifest.loc[manifest["is_new"], ["item_id", "split"]]
    with store.begin() as conn:
        if len(new_rows):
            conn.execute(
                splits_table.insert(),
                [
                    {"item_id": i, "split": s, "dataset_version": version, "assigned_at": now}
                    for i, s in new_rows.itertuples(index=False)
                ],
            )
        known = conn.execute(
            sa.select(dataset_versions_table.c.dataset_version).where(dataset_versions_table.c.dataset_version == version)
        ).first()
        if known is None:
            conn.execute(
                dataset_versions_table.insert().values(
                    dataset_version=version,
                    created_at=now,
                    n_items=len(manifest),
                    class_weights=dict(class_weights),
                    manifest=manifest_json,
                    card=card,
                )
            )
    return known is None


def version_rows(store: LabelStore, version: str, column: str) -> list[dict[str, Any]]:
    """``column`` of a dataset version's row: one row, or none when the store does not hold the version."""
    table = dataset_versions_table
    return store.fetch(sa.select(table.c[column]).where(table.c.dataset_version == version))


def load_manifest(store: LabelStore, version: str) -> pd.DataFrame:
    """The (item_id, label, split[, sample_weight]) manifest stored for a dataset version."""
    rows = version_rows(store, version, "manifest")
    if not rows:
        raise ValueError(f"dataset version {version!r} is not in the label store")
    return manifest_from_json(rows[0]["manifest"])


def manifest_document(store: LabelStore, version: str) -> dict[str, Any] | None:
    """The whole manifest document stored for a version (settings, previous_version, ...), None when unknown."""
    rows = version_rows(store, version, "manifest")
    document = rows[0]["manifest"] if rows else None
    if isinstance(document, str):  # SQLite hands JSON back as text
        document = json.loads(document)
    return document if isinstance(document, dict) else None


def dataset_card(store: LabelStore, version: str) -> str | None:
    """The dataset card stored with a version (None when there is none)."""
    rows = version_rows(store, version, "card")
    return rows[0]["card"] if rows and rows[0]["card"] else None
