"""Bitemporal reads of the label store and the dataset rebuilt "as of" a time.

Two times (the store never forgets either):

- **valid time**: when a vote was given or changed in Label Studio (``annotations.updated_at``, else
  ``created_at``; a tombstone's is when its deletion was noticed);
- **system time** (``known_at``): when the store learned it (``annotations.synced_at``; ``computed_at`` of a
  consensus version, ``assigned_at`` of a frozen split, ``created_at`` of a dataset version).

:func:`votes_as_of` answers "which votes stood at ``valid_time``, by what the store knew at ``known_at``";
:func:`rebuild_dataset_as_of` answers "which manifest would ``dataset_splits`` have built at ``known_at``",
from the consensus log, the frozen splits, the class list, the pHashes and the settings of the version then
current, through the same :func:`..dataset.build.build_dataset` the asset uses. ``items.status`` is the one
input the store does not version: an item counts as active at T when it was ingested by T and is active now,
or lost its activity later (it still had a live consensus at T; retiring an item retracts its consensus).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.dataset import splits as split_core
from labeling_assets.core.dataset.build import BuildInputs, BuiltDataset, build_dataset, with_previous
from labeling_assets.core.label_sets import SINGLE_LABEL, TASK_TYPES, TaskType
from labeling_assets.core.store.dataset_versions import LABELED_COLUMNS, manifest_document, usable_labeled
from labeling_assets.core.store.derived_schema import class_list_versions_table
from labeling_assets.core.store.lineage_schema import item_phashes_table
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    dataset_versions_table,
    items_table,
    splits_table,
)

_MAX_IN = 2000  # ids in one IN clause; more are filtered after one full read
VOTE_COLUMNS = [
    "ls_annotation_id", "version", "ls_task_id", "item_id", "labeler_id", "label",
    "created_at", "updated_at", "synced_at",
]


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC (a naive time is taken as UTC, as the store writes them: SQLite hands them back naive)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time (``2026-11-20T12:00Z``, ``2026-11-20 12:00:00+01:00``, a date) in UTC.

    Raises:
        ValueError: naming the text and the expected form.
    """
    try:
        return utc(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00")))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-20T12:00Z)") from None


def votes_as_of(
    store: LabelStore,
    valid_time: dt.datetime,
    known_at: dt.datetime | None = None,
    *,
    item_id: str | None = None,
    item_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The votes standing at ``valid_time`` as the store knew them at ``known_at`` (default: now).

    Per Label Studio annotation, its newest version that was both valid by ``valid_time`` and synced by
    ``known_at``; a tombstone there means the vote was gone. Columns :data:`VOTE_COLUMNS`, by annotation id.
    """
    a = annotations_table
    valid = sa.func.coalesce(a.c.updated_at, a.c.created_at, a.c.synced_at)
    where = [valid <= utc(valid_time)]
    if known_at is not None:
        where.append(a.c.synced_at <= utc(known_at))
    if item_id is not None:
        where.append(a.c.item_id == item_id)
    if item_ids is not None and len(item_ids) <= _MAX_IN:
        where.append(a.c.item_id.in_(list(item_ids)))  # a diff's few relabeled items, not the whole log
    latest = (
        sa.select(a.c.ls_annotation_id, sa.func.max(a.c.version).label("version"))
        .where(*where)
        .group_by(a.c.ls_annotation_id)
        .subquery("latest_as_of")
    )
    query = (
        sa.select(*(a.c[c] for c in VOTE_COLUMNS))
        .join(latest, sa.and_(a.c.ls_annotation_id == latest.c.ls_annotation_id, a.c.version == latest.c.version))
        .where(a.c.deleted.is_(False))
        .order_by(a.c.ls_annotation_id)
    )
    frame = pd.DataFrame(store.fetch(query), columns=VOTE_COLUMNS)
    if item_ids is not None and len(item_ids) > _MAX_IN:
        frame = frame[frame["item_id"].isin(set(item_ids))].reset_index(drop=True)
    return frame


def consensus_as_of(store: LabelStore, known_at: dt.datetime, *, include_retracted: bool = False) -> pd.DataFrame:
    """The newest consensus version per item computed by ``known_at`` (retractions skipped unless asked)."""
    c = consensus_table
    latest = (
        sa.select(c.c.item_id, sa.func.max(c.c.version).label("version"))
        .where(c.c.computed_at <= utc(known_at))
        .group_by(c.c.item_id)
        .subquery("consensus_as_of")
    )
    query = sa.select(c).join(latest, sa.and_(c.c.item_id == latest.c.item_id, c.c.version == latest.c.version))
    if not include_retracted:
        query = query.where(c.c.retracted.is_(False))
    return pd.DataFrame(store.fetch(query), columns=[col.name for col in c.columns])


def splits_as_of(store: LabelStore, known_at: dt.datetime) -> pd.Series:
    """item_id -> split of the assignments frozen by ``known_at``."""
    rows = store.fetch(
        sa.select(splits_table.c.item_id, splits_table.c.split).where(splits_table.c.assigned_at <= utc(known_at))
    )
    return pd.Series({r["item_id"]: r["split"] for r in rows}, dtype=object)


def class_list_as_of(store: LabelStore, known_at: dt.datetime) -> list[str] | None:
    """The class list version in force at ``known_at`` (None when none was recorded by then)."""
    t = class_list_versions_table
    rows = store.fetch(sa.select(t.c.classes).where(t.c.changed_at <= utc(known_at)).order_by(t.c.version.desc()).limit(1))
    return [str(c) for c in rows[0]["classes"]] if rows else None


def versions_by_time(store: LabelStore) -> list[dict[str, Any]]:
    """Every dataset version (dataset_version, created_at, n_items), oldest first."""
    t = dataset_versions_table
    return store.fetch(sa.select(t.c.dataset_version, t.c.created_at, t.c.n_items).order_by(t.c.created_at))


def _labeled_as_of(
    store: LabelStore, known_at: dt.datetime, classes: Sequence[str] | None, task_type: TaskType = SINGLE_LABEL
) -> pd.DataFrame:
    consensus = consensus_as_of(store, known_at)
    items = pd.DataFrame(
        store.fetch(
            sa.select(items_table.c.item_id, items_table.c.status, items_table.c.group_key, items_table.c.gold_label)
            .where(items_table.c.ingested_at <= utc(known_at))
        ),
        columns=["item_id", "status", "group_key", "gold_label"],
    )
    # Not versioned: an item that is not active now but had a live consensus at T was active then (retiring
    # an item retracts its consensus, a new version after T).
    items["status"] = "active"
    frame = consensus.merge(items, on="item_id", how="left")[LABELED_COLUMNS]
    return usable_labeled(frame, classes, task_type=task_type)[0]


@dataclass(frozen=True)
class Rebuilt:
    built: BuiltDataset
    known_at: dt.datetime
    classes: list[str]
    version_then: str | None  # the dataset version stored as current at known_at, if any


def rebuild_dataset_as_of(
    store: LabelStore,
    known_at: dt.datetime,
    *,
    classes: Sequence[str],
    ratios: split_core.SplitRatios | None = None,
    seed: int | None = None,
    near_duplicate_distance: int | None = None,
) -> Rebuilt:
    """The dataset version ``dataset_splits`` would have built at ``known_at``, from the store's logs.

    Settings not given come from the newest version stored by then (the run's ratios, seed and near-duplicate
    distance), else the defaults; the class list is the recorded version in force then, else ``classes``.
    """
    known_at = utc(known_at)
    stored = [v for v in versions_by_time(store) if utc(v["created_at"]) <= known_at]
    then = stored[-1]["dataset_version"] if stored else None
    settings = version_settings(store, then)
    class_list = class_list_as_of(store, known_at) or [str(c) for c in classes]
    # A multi-label (or box, ...) version records its task type; versions before it (and single-label ones) do not.
    recorded = settings.get("task_type")
    task_type: TaskType = cast(TaskType, recorded) if recorded in TASK_TYPES else SINGLE_LABEL
    labeled = _labeled_as_of(store, known_at, class_list, task_type)
    if labeled.empty:
        raise ValueError(f"no item had a live consensus label at {known_at.isoformat()}: nothing to build")
    phashes = pd.DataFrame(
        store.fetch(
            sa.select(item_phashes_table.c.item_id, item_phashes_table.c.phash).where(
                item_phashes_table.c.phash.is_not(None), item_phashes_table.c.computed_at <= known_at
            )
        ),
        columns=["item_id", "phash"],
    )
    inputs = BuildInputs(
        labeled=labeled,
        existing=splits_as_of(store, known_at),
        ratios=ratios or split_core.SplitRatios(**settings.get("ratios", {})),
        seed=int(settings.get("seed", 0)) if seed is None else seed,
        phashes=phashes.set_index("item_id")["phash"],
        near_duplicate_distance=int(settings.get("near_duplicate_distance", -1))
        if near_duplicate_distance is None
        else near_duplicate_distance,
        previous_version=None,
        task_type=task_type,
        classes=class_list,
    )
    built = build_dataset(inputs)
    built = with_previous(built, _previous_of(built.version, [v["dataset_version"] for v in stored]))
    return Rebuilt(built, known_at, class_list, then)


def version_settings(store: LabelStore, version: str | None) -> dict[str, Any]:
    """The settings a stored version was built with (ratios, seed, near_duplicate_distance: those it has)."""
    if version is None:
        return {}
    manifest = manifest_document(store, version)
    keys = ("ratios", "seed", "near_duplicate_distance", "task_type")
    return {k: manifest[k] for k in keys if manifest and k in manifest}


def _previous_of(version: str, stored_in_order: list[str]) -> str | None:
    """The ``previous_version`` dataset_splits wrote for ``version``: the newest version stored before this
    one was first stored (or before ``known_at``, for a version never stored)."""
    if version in stored_in_order:
        before = stored_in_order[: stored_in_order.index(version)]
    else:
        before = stored_in_order
    return before[-1] if before else None
