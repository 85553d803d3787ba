"""Dataset lineage in the label store: version diffs with the votes behind them, tags, the models trained on
each version, and one item's whole history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.class_schema import map_answer
from labeling_assets.core.dataset.diff import (
    ManifestDiff,
    diff_manifests,
    label_text,
    vote_changes,
    votes_by_item,
)
from labeling_assets.core.dataset.near_duplicates import from_hex, hamming
from labeling_assets.core.store.as_of import utc, votes_as_of
from labeling_assets.core.store.class_changes import class_mapping, schema_change_report
from labeling_assets.core.store.dataset_versions import load_manifest, manifest_document, version_rows
from labeling_assets.core.store.held_out import held_out
from labeling_assets.core.store.lineage_schema import (
    dataset_version_tags_table,
    item_phashes_table,
    model_trainings_table,
)
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    dataset_versions_table,
    items_table,
    splits_table,
    tasks_table,
    utcnow,
)


class UnknownVersion(LookupError):
    """A dataset version (or tag) the label store does not hold."""


def resolve_version(store: LabelStore, name: str) -> str:
    """A dataset version by its id, a unique prefix of it, or a tag.

    Raises:
        UnknownVersion: naming what was asked and what the store holds.
    """
    tags = {r["tag"]: r["dataset_version"] for r in store.fetch(sa.select(dataset_version_tags_table))}
    if name in tags:
        return str(tags[name])
    versions = [r["dataset_version"] for r in store.fetch(sa.select(dataset_versions_table.c.dataset_version))]
    matches = [v for v in versions if v.startswith(name)] if name else []
    if len(matches) == 1:
        return str(matches[0])
    what = "ambiguous" if matches else "not a dataset version or tag in the label store"
    raise UnknownVersion(f"{name!r} is {what} ({len(versions)} versions, tags: {sorted(tags) or 'none'})")


def created_at(store: LabelStore, version: str) -> dt.datetime:
    rows = version_rows(store, version, "created_at")
    if not rows:
        raise UnknownVersion(f"dataset version {version!r} is not in the label store")
    return utc(rows[0]["created_at"])


def previous_version_of(store: LabelStore, version: str) -> str | None:
    """The ``previous_version`` recorded in a version's manifest (None for the first)."""
    manifest = manifest_document(store, version)
    previous = manifest.get("previous_version") if manifest else None
    return str(previous) if previous else None


def diff_versions(store: LabelStore, old: str | None, new: str) -> ManifestDiff:
    """The diff between two stored versions; relabeled items carry the votes that changed between the two
    versions' creation times (bitemporal: as the store knew them then)."""
    before = load_manifest(store, old) if old else None
    diff = diff_manifests(before, load_manifest(store, new), old, new)
    diff.schema_changes = schema_change_report(store, after=created_at(store, old) if old else None,
                                               until=created_at(store, new))  # fmt: skip
    mapping = class_mapping(store)
    if before is not None and mapping and not diff.relabeled.empty:  # relabeled by a rename or merge alone
        given = dict(zip(before["item_id"].astype(str), before["label"], strict=True))
        diff.renamed = {str(r["item_id"]) for r in diff.relabeled.to_dict("records")
                        if label_text(map_answer(given[str(r["item_id"])], mapping)) == str(r["new_label"])}  # fmt: skip
    if old and not diff.relabeled.empty:
        ids = diff.relabeled["item_id"].astype(str).tolist()
        before_at, after_at = created_at(store, old), created_at(store, new)
        after = votes_as_of(store, after_at, after_at, item_ids=ids)
        diff.vote_changes = vote_changes(votes_as_of(store, before_at, before_at, item_ids=ids), after, ids)
        diff.votes = votes_by_item(after, ids)
    return diff


# --- tags ---------------------------------------------------------------------------------------


def tag_version(store: LabelStore, version: str, tag: str, note: str | None = None) -> bool:
    """Name ``version`` ``tag``; True when new, False when it already named it.

    Raises:
        UnknownVersion: the version is not stored.
        ValueError: the tag is empty or already names another version (a tag never moves silently).
    """
    tag = tag.strip()
    if not tag:
        raise ValueError("a tag needs a non-empty name")
    created_at(store, version)
    t = dataset_version_tags_table
    with store.begin() as conn:
        row = conn.execute(sa.select(t.c.dataset_version).where(t.c.tag == tag)).first()
        if row is not None:
            if row.dataset_version != version:
                raise ValueError(f"tag {tag!r} already names dataset version {row.dataset_version}")
            return False
        conn.execute(t.insert().values(tag=tag, dataset_version=version, note=note, tagged_at=utcnow()))
    return True


def tags_of(store: LabelStore, version: str) -> list[str]:
    t = dataset_version_tags_table
    return [r["tag"] for r in store.fetch(sa.select(t.c.tag).where(t.c.dataset_version == version).order_by(t.c.tag))]


# --- models -------------------------------------------------------------------------------------


def record_model_training(
    store: LabelStore,
    *,
    dataset_version: str,
    model_name: str,
    model_version: int | None,
    mlflow_run_id: str | None,
    dagster_run_id: str | None,
) -> None:
    with store.begin() as conn:
        conn.execute(
            model_trainings_table.insert().values(
                dataset_version=dataset_version,
                model_name=model_name,
                model_version=model_version,
                mlflow_run_id=mlflow_run_id,
                dagster_run_id=dagster_run_id,
                trained_at=utcnow(),
            )
        )


def models_trained_on(store: LabelStore, version: str) -> list[dict[str, Any]]:
    t = model_trainings_table
    return store.fetch(sa.select(t).where(t.c.dataset_version == version).order_by(t.c.trained_at))


# --- one item's history -------------------------------------------------------------------------


def _rows(store: LabelStore, table: sa.Table, column: str, value: str, order: Sequence[str]) -> list[dict[str, Any]]:
    return store.fetch(sa.select(table).where(table.c[column] == value).order_by(*(table.c[o] for o in order)))


def item_history(store: LabelStore, item_id: str, *, near_duplicate_distance: int = 6) -> dict[str, Any]:
    """Everything the store knows about one item (a unique prefix of its id is enough).

    Raises:
        LookupError: no item or several match.
    """
    # autoescape: "%" and "_" typed by a person are characters of an id, not LIKE wildcards (ESCAPE '/').
    matching = items_table.c.item_id.startswith(item_id, autoescape=True)
    ids = [r["item_id"] for r in store.fetch(sa.select(items_table.c.item_id).where(matching))]
    if len(ids) != 1:
        raise LookupError(f"{item_id!r} matches {len(ids)} items in the label store (give more of the id)")
    item = ids[0]
    row = _rows(store, items_table, "item_id", item, ["item_id"])[0]
    versions, models = [], []
    for v in store.fetch(sa.select(dataset_versions_table.c.dataset_version, dataset_versions_table.c.created_at)
                         .order_by(dataset_versions_table.c.created_at)):
        manifest = load_manifest(store, v["dataset_version"])
        hit = manifest[manifest["item_id"] == item]
        if hit.empty:
            continue
        entry = {"dataset_version": v["dataset_version"], "created_at": v["created_at"],
                 "label": hit["label"].iloc[0], "split": hit["split"].iloc[0],
                 "tags": tags_of(store, v["dataset_version"])}
        versions.append(entry)
        models += [{**m, "split": entry["split"]} for m in models_trained_on(store, v["dataset_version"])]
    return {
        "item": {k: row[k] for k in ("item_id", "source_path", "status", "status_reason", "ingested_at",
                                     "supersedes", "group_key", "gold_label")},
        "superseded_by": [r["item_id"] for r in _rows(store, items_table, "supersedes", item, ["ingested_at"])],
        "phash": _phash(store, item),
        "near_duplicates": _near_duplicates(store, item, near_duplicate_distance),
        "tasks": _rows(store, tasks_table, "item_id", item, ["id"]),
        "votes": _rows(store, annotations_table, "item_id", item, ["ls_annotation_id", "version"]),
        "consensus": _rows(store, consensus_table, "item_id", item, ["version"]),
        "split": next(iter(_rows(store, splits_table, "item_id", item, ["item_id"])), None),
        "held_out": held_out(store).get(item),  # left out of the current version: why, near which frozen items
        "dataset_versions": versions,
        "models": models,
    }


def _phash(store: LabelStore, item: str) -> str | None:
    rows = _rows(store, item_phashes_table, "item_id", item, ["item_id"])
    return rows[0]["phash"] if rows else None


def _near_duplicates(store: LabelStore, item: str, distance: int) -> list[dict[str, Any]]:
    """Items whose pHash is within ``distance`` bits of this one's (one vectorized pass, no pair search)."""
    mine = _phash(store, item)
    if mine is None or distance < 0:
        return []
    t = item_phashes_table
    frame = pd.DataFrame(store.fetch(sa.select(t.c.item_id, t.c.phash).where(t.c.phash.is_not(None), t.c.item_id != item)),
                         columns=["item_id", "phash"])
    if frame.empty:
        return []
    d = hamming(from_hex(frame["phash"].tolist()), np.full(len(frame), int(mine, 16), dtype=np.uint64))
    close = frame.assign(distance=d)[d <= distance].sort_values(["distance", "item_id"])
    return [{"item_id": r["item_id"], "distance": int(r["distance"])} for r in close.to_dict(orient="records")]
