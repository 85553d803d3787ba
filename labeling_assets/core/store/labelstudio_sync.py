"""Store side of the Label Studio loop: reserve/record tasks, and read what the syncs collected.

The annotation sync itself (full snapshots and changed tasks, exactly once) is in ``annotation_sync``; its
public names are re-exported here for callers that import them from this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.labelstudio.tasks import Candidate, QueuedItem
from labeling_assets.core.store.annotation_sync import RemoteAnnotation as RemoteAnnotation
from labeling_assets.core.store.annotation_sync import SyncReport as SyncReport
from labeling_assets.core.store.annotation_sync import content_hash as content_hash
from labeling_assets.core.store.annotation_sync import sync_annotations as sync_annotations
from labeling_assets.core.store.as_of import utc
from labeling_assets.core.store.prelabel_models_schema import prelabel_models_table
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    chunked,
    current_annotations_query,
    items_table,
    labelers_table,
    prelabels_table,
    tasks_table,
    utcnow,
)

# --- tasks -------------------------------------------------------------------------------------


def queue_candidates(store: LabelStore, project_id: int | Sequence[int]) -> list[Candidate]:
    """Active items with no task in this project (or in any of these: blind mode) yet, with their newest prelabel
    when one exists."""
    ids = [project_id] if isinstance(project_id, int) else list(project_id)
    queued = sa.select(tasks_table.c.item_id).where(tasks_table.c.ls_project_id.in_(ids))
    rows = store.fetch(
        sa.select(items_table.c.item_id, items_table.c.gold_label, items_table.c.ingested_at).where(
            items_table.c.status == "active", items_table.c.item_id.notin_(queued)
        )
    )
    newest = (
        sa.select(prelabels_table.c.item_id, sa.func.max(prelabels_table.c.computed_at).label("computed_at"))
        .group_by(prelabels_table.c.item_id)
        .subquery()
    )
    probs = {
        r["item_id"]: (r["probs"], r["model_version"])
        for r in store.fetch(
            sa.select(prelabels_table.c.item_id, prelabels_table.c.probs, prelabels_table.c.model_version).join(
                newest,
                sa.and_(
                    prelabels_table.c.item_id == newest.c.item_id, prelabels_table.c.computed_at == newest.c.computed_at
                ),
            )
        )
    }
    return [
        Candidate(
            item_id=r["item_id"],
            is_gold=r["gold_label"] is not None,
            probs=probs.get(r["item_id"], (None, None))[0],
            model_version=probs.get(r["item_id"], (None, None))[1],
            ingested_at=utc(r["ingested_at"]) if r["ingested_at"] is not None else None,
        )
        for r in rows
    ]


def last_prelabel_at(store: LabelStore) -> dt.datetime | None:
    """When the newest pre-label was computed; None when no model has pre-labeled an item."""
    rows = store.fetch(sa.select(sa.func.max(prelabels_table.c.computed_at).label("at")))
    return utc(rows[0]["at"]) if rows and rows[0]["at"] is not None else None


def reserve_tasks(store: LabelStore, project_id: int, queue: Sequence[QueuedItem], *, overlap: int) -> int:
    """Record the chosen items as tasks not yet pushed (ls_task_id null); skips items already recorded."""
    if not queue:
        return 0
    with store.begin() as conn:
        existing = {
            r[0]
            for r in conn.execute(
                sa.select(tasks_table.c.item_id).where(
                    tasks_table.c.ls_project_id == project_id, tasks_table.c.item_id.in_([q.item_id for q in queue])
                )
            )
        }
        rows = [
            {
                "item_id": q.item_id,
                "ls_project_id": project_id,
                "required_annotations": overlap,
                "is_gold": q.is_gold,
                "priority": q.priority,
                "model_version": q.model_version if q.probs else None,
            }
            for q in queue
            if q.item_id not in existing
        ]
        for chunk in chunked(rows, 1000):
            conn.execute(tasks_table.insert(), list(chunk))
    return len(rows)


def reserve_assigned_tasks(
    store: LabelStore, assigned: Mapping[int, Sequence[QueuedItem]], *, overlap: int = 1
) -> int:
    """Blind mode: reserve each project's assigned items in one transaction (a crash never leaves an item with
    only some of its projects, which would leave it short of labelers for good); skips items already recorded."""
    rows = []
    with store.begin() as conn:
        for project_id, queue in assigned.items():
            wanted = [q.item_id for q in queue]
            existing = {r[0] for chunk in chunked(wanted, 900) for r in conn.execute(
                sa.select(tasks_table.c.item_id).where(tasks_table.c.ls_project_id == project_id,
                                                       tasks_table.c.item_id.in_(chunk)))}  # fmt: skip
            rows += [{"item_id": q.item_id, "ls_project_id": project_id, "required_annotations": overlap,
                      "is_gold": q.is_gold, "priority": q.priority,
                      "model_version": q.model_version if q.probs else None}
                     for q in queue if q.item_id not in existing]  # fmt: skip
        for chunk in chunked(rows, 1000):
            conn.execute(tasks_table.insert(), list(chunk))
    return len(rows)


def task_counts(store: LabelStore, project_ids: Sequence[int]) -> dict[int, int]:
    """Tasks recorded (reserved or pushed) per project."""
    if not project_ids:
        return {}
    t = tasks_table
    rows = store.fetch(sa.select(t.c.ls_project_id, sa.func.count().label("n"))
                       .where(t.c.ls_project_id.in_(list(project_ids))).group_by(t.c.ls_project_id))  # fmt: skip
    return {int(r["ls_project_id"]): int(r["n"]) for r in rows}


def pending_tasks(store: LabelStore, project_id: int) -> list[dict[str, Any]]:
    """Reserved tasks not yet linked to a Label Studio task, in queue order (reservation id)."""
    return store.fetch(
        sa.select(
            tasks_table.c.id, tasks_table.c.item_id, items_table.c.uri, tasks_table.c.model_version, tasks_table.c.is_gold
        )
        .join(items_table, items_table.c.item_id == tasks_table.c.item_id)
        .where(tasks_table.c.ls_project_id == project_id, tasks_table.c.ls_task_id.is_(None))
        .order_by(tasks_table.c.id)
    )


def link_tasks(store: LabelStore, project_id: int, remote_ids: Mapping[str, int]) -> int:
    """Fill ls_task_id of reserved tasks whose item now exists in Label Studio; returns how many."""
    pending = {r["item_id"]: r["id"] for r in pending_tasks(store, project_id)}
    now = utcnow()
    linked = 0
    with store.begin() as conn:
        for item_id, row_id in pending.items():
            if item_id in remote_ids:
                conn.execute(
                    tasks_table.update()
                    .where(tasks_table.c.id == row_id)
                    .values(ls_task_id=remote_ids[item_id], pushed_at=now)
                )
                linked += 1
    return linked


def newest_prelabels(store: LabelStore, item_ids: Sequence[str]) -> dict[str, tuple[dict[str, float], str]]:
    """item_id -> (class probabilities, model version) of the newest prelabel of each listed item that has one."""
    if not item_ids:
        return {}
    p = prelabels_table
    rows = store.fetch(
        sa.select(p.c.item_id, p.c.probs, p.c.model_version).where(p.c.item_id.in_(item_ids)).order_by(p.c.computed_at)
    )
    return {r["item_id"]: (r["probs"], r["model_version"]) for r in rows}  # ordered by time: the newest wins


def thresholds_of(store: LabelStore, model_versions: Sequence[str]) -> dict[str, dict[str, float]]:
    """model version -> class -> threshold, for the listed versions that have thresholds."""
    if not model_versions:
        return {}
    rows = store.fetch(
        sa.select(prelabel_models_table.c.model_version, prelabel_models_table.c.thresholds).where(
            prelabel_models_table.c.model_version.in_(sorted(set(model_versions)))
        )
    )
    return {str(r["model_version"]): {str(c): float(t) for c, t in r["thresholds"].items()} for r in rows}


def linked_tasks(store: LabelStore, project_id: int) -> list[dict[str, Any]]:
    """Tasks of the project that exist in Label Studio: row id, ls_task_id, item_id, is_gold and the model
    version of the prediction they show (None: none)."""
    t = tasks_table
    return store.fetch(
        sa.select(t.c.id, t.c.ls_task_id, t.c.item_id, t.c.is_gold, t.c.model_version).where(
            t.c.ls_project_id == project_id, t.c.ls_task_id.isnot(None)
        )
    )


def item_uris(store: LabelStore, item_ids: Sequence[str]) -> dict[str, str]:
    """item_id -> the URI of its raw copy."""
    rows = store.fetch(sa.select(items_table.c.item_id, items_table.c.uri).where(items_table.c.item_id.in_(item_ids)))
    return {str(r["item_id"]): str(r["uri"]) for r in rows}


def record_shown_versions(store: LabelStore, shown: Mapping[int, str]) -> None:
    """Task row id -> the model version whose prediction its Label Studio task now carries."""
    with store.begin() as conn:
        for row_id, version in shown.items():
            conn.execute(tasks_table.update().where(tasks_table.c.id == row_id).values(model_version=version))


def linked_task_counts(store: LabelStore, project_id: int) -> dict[bool, int]:
    """Tasks of the project that exist in Label Studio, by whether they are gold (True) or not (False)."""
    rows = store.fetch(
        sa.select(tasks_table.c.is_gold, sa.func.count().label("n"))
        .where(tasks_table.c.ls_project_id == project_id, tasks_table.c.ls_task_id.isnot(None))
        .group_by(tasks_table.c.is_gold)
    )
    return {bool(r["is_gold"]): int(r["n"]) for r in rows}


# --- collected annotations ---------------------------------------------------------------------


def labeler_ids(store: LabelStore) -> list[str]:
    """Every labeler the store has seen (Label Studio user ids as text), sorted."""
    return sorted(r["labeler_id"] for r in store.fetch(sa.select(labelers_table.c.labeler_id)))


@dataclass(frozen=True)
class AnnotationTotals:
    current: int  # votes: the latest, not deleted, version of each annotation
    annotated_items: int  # items with at least one current annotation
    stored_versions: int  # every row, tombstones and superseded versions included
    unreadable: int = 0  # current annotations whose result holds no label (skipped as votes)


def annotation_totals(store: LabelStore) -> AnnotationTotals:
    current = current_annotations_query().subquery()
    counts = store.fetch(
        sa.select(
            sa.func.count().label("n"),
            sa.func.count(sa.distinct(current.c.item_id)).label("items"),
            sa.func.count().filter(current.c.label.is_(None)).label("unreadable"),
        ).select_from(current)
    )[0]
    return AnnotationTotals(
        int(counts["n"]), int(counts["items"]), store.count(annotations_table), int(counts["unreadable"] or 0)
    )
