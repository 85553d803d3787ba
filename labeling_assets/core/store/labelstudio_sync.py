"""Store side of the Label Studio loop: reserve/record tasks, and sync annotations exactly once.

No dagster and no HTTP here: callers pass what Label Studio holds (``RemoteAnnotation`` rows) and
these functions turn it into store rows.

Exactly-once: :func:`sync_annotations` compares the full remote snapshot with the latest stored
version of each annotation by content hash, and writes only differences (new annotation -> version 1,
changed label -> next version that ``supersedes`` the previous, gone/cancelled -> tombstone version),
all in one transaction. A re-poll or a retried run finds no difference; a crash before commit
writes nothing; a concurrent run trips the unique (ls_annotation_id, version) constraint and is
retried against the new state.

Ordering: every snapshot carries the time it was taken (before the export was read). The transaction
first locks the project's row in ``sync_watermarks`` (SQLite: the first statement is a write, so the
database write lock is held from the start; PostgreSQL: ``SELECT ... FOR UPDATE``), so syncs of one
project serialize, and a snapshot older than the one already committed is refused: it writes nothing
(``SyncReport.stale``). Without this, an old export committed after a newer one revived deleted
annotations and reverted edits until the next sync.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from labeling_assets.core.labelstudio.tasks import Candidate, QueuedItem
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    chunked,
    current_annotations_query,
    items_table,
    labelers_table,
    prelabels_table,
    sync_watermarks_table,
    tasks_table,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteAnnotation:
    """One annotation as Label Studio holds it now."""

    ls_annotation_id: int
    ls_task_id: int
    item_id: str | None  # from the task data
    labeler_id: str  # Label Studio user id, as text
    label: str | list[str] | None
    lead_time_s: float | None
    created_at: str | None
    updated_at: str | None
    was_cancelled: bool = False


@dataclass
class SyncReport:
    new: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    unknown_task: int = 0  # annotations of tasks that map to no stored item (not ours)
    new_labelers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    snapshot_at: dt.datetime | None = None  # when the synced snapshot was taken
    # Refused: a newer snapshot (taken at ``committed_snapshot_at``) was committed first; nothing written.
    stale: bool = False
    committed_snapshot_at: dt.datetime | None = None

    @property
    def written(self) -> int:
        return self.new + self.updated + self.deleted


def content_hash(label: Any, deleted: bool) -> str:
    return hashlib.sha256(
        json.dumps({"label": label, "deleted": deleted}, sort_keys=True).encode()
    ).hexdigest()


def _ts(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _latest_versions(conn: sa.Connection, project_id: int) -> dict[int, dict[str, Any]]:
    """Latest stored version of every annotation of the project's tasks (tombstones included)."""
    a = annotations_table
    task_ids = sa.select(tasks_table.c.ls_task_id).where(
        tasks_table.c.ls_project_id == project_id, tasks_table.c.ls_task_id.isnot(None)
    )
    latest = (
        sa.select(a.c.ls_annotation_id, sa.func.max(a.c.version).label("version"))
        .where(a.c.ls_task_id.in_(task_ids))
        .group_by(a.c.ls_annotation_id)
        .subquery()
    )
    stmt = sa.select(
        a.c.id,
        a.c.ls_annotation_id,
        a.c.version,
        a.c.content_hash,
        a.c.deleted,
        a.c.item_id,
        a.c.labeler_id,
        a.c.ls_task_id,
    ).join(
        latest, sa.and_(a.c.ls_annotation_id == latest.c.ls_annotation_id, a.c.version == latest.c.version)
    )
    return {int(r.ls_annotation_id): dict(r._mapping) for r in conn.execute(stmt)}


def sync_annotations(
    store: LabelStore,
    project_id: int,
    remote: Sequence[RemoteAnnotation],
    *,
    snapshot_at: dt.datetime | None = None,
    labeler_names: Mapping[str, str] | None = None,
    retries: int = 3,
    on_locked: Callable[[], None] | None = None,
) -> SyncReport:
    """Make the store's latest versions equal Label Studio's current annotations (see module docstring).

    Args:
        store: the label store.
        project_id: the Label Studio project the snapshot is of.
        remote: every annotation of the project as Label Studio held it at ``snapshot_at``.
        snapshot_at: when the snapshot was taken: a time read *before* the export request was sent.
            Default: now (only for snapshots built in memory; a snapshot read from Label Studio must pass it).
        labeler_names: display names of labelers seen for the first time.
        retries: attempts when a concurrent writer trips a unique constraint.
        on_locked: called once the project's sync lock is held, before anything is read (lets tests
            interleave two syncs deterministically).

    Returns:
        What was written; ``stale`` when a newer snapshot had already been committed (nothing written).
    """
    started = time.perf_counter()
    taken = _aware(snapshot_at or utcnow())
    for attempt in range(retries):
        try:
            report = _sync_once(store, project_id, remote, labeler_names or {}, taken, on_locked)
            report.seconds = time.perf_counter() - started
            return report
        except sa.exc.IntegrityError:
            if attempt == retries - 1:
                raise
    raise AssertionError("unreachable")


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back naive: every timestamp in the store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _lock_watermark(conn: sa.Connection, project_id: int) -> dt.datetime | None:
    """Take the project's sync lock and return the newest committed snapshot time (None: never synced).

    The insert comes first on purpose: on SQLite a write statement takes the database write lock (held to
    commit), so nothing read afterwards can be changed by another sync; on PostgreSQL the row then exists
    for ``FOR UPDATE`` to lock.
    """
    w = sync_watermarks_table
    insert = postgresql.insert(w) if conn.dialect.name == "postgresql" else sqlite.insert(w)
    conn.execute(insert.values(ls_project_id=project_id).on_conflict_do_nothing(index_elements=[w.c.ls_project_id]))
    committed = conn.execute(
        sa.select(w.c.snapshot_at).where(w.c.ls_project_id == project_id).with_for_update()
    ).scalar()
    return _aware(committed) if committed is not None else None


def _sync_once(
    store: LabelStore,
    project_id: int,
    remote: Sequence[RemoteAnnotation],
    names: Mapping[str, str],
    snapshot_at: dt.datetime,
    on_locked: Callable[[], None] | None,
) -> SyncReport:
    report = SyncReport(snapshot_at=snapshot_at)
    now = utcnow()
    with store.begin() as conn:
        committed = _lock_watermark(conn, project_id)
        if on_locked is not None:
            on_locked()
        report.committed_snapshot_at = committed
        if committed is not None and snapshot_at < committed:
            report.stale = True
            log.warning(
                "refused a stale Label Studio snapshot of project %s: taken at %s, but a newer one (taken at %s) "
                "is already committed; nothing written",
                project_id,
                snapshot_at.isoformat(),
                committed.isoformat(),
            )
            return report
        task_items = {
            int(r.ls_task_id): r.item_id
            for r in conn.execute(
                sa.select(tasks_table.c.ls_task_id, tasks_table.c.item_id).where(
                    tasks_table.c.ls_project_id == project_id, tasks_table.c.ls_task_id.isnot(None)
                )
            )
        }
        latest = _latest_versions(conn, project_id)
        rows: list[dict[str, Any]] = []
        seen: set[int] = set()
        for ann in remote:
            item_id = task_items.get(ann.ls_task_id)
            if item_id is None:
                report.unknown_task += 1
                continue
            gone = ann.was_cancelled or ann.label is None  # skipped tasks are not labels
            if gone:
                continue  # handled below as "absent"
            seen.add(ann.ls_annotation_id)
            digest = content_hash(ann.label, False)
            prev = latest.get(ann.ls_annotation_id)
            if prev is not None and prev["content_hash"] == digest:
                report.unchanged += 1
                continue
            if prev is None:
                report.new += 1
            else:
                report.updated += 1  # changed label, or re-created after a tombstone
            rows.append(
                {
                    "ls_annotation_id": ann.ls_annotation_id,
                    "version": (prev["version"] + 1) if prev else 1,
                    "ls_task_id": ann.ls_task_id,
                    "item_id": item_id,
                    "labeler_id": ann.labeler_id,
                    "label": ann.label,
                    "lead_time_s": ann.lead_time_s,
                    "created_at": _ts(ann.created_at),
                    "updated_at": _ts(ann.updated_at),
                    "synced_at": now,
                    "supersedes": prev["id"] if prev else None,
                    "deleted": False,
                    "content_hash": digest,
                }
            )
        tombstone_hash = content_hash(None, True)
        for ls_id, prev in latest.items():
            if ls_id in seen or prev["deleted"]:
                continue
            report.deleted += 1
            rows.append(
                {
                    "ls_annotation_id": ls_id,
                    "version": prev["version"] + 1,
                    "ls_task_id": prev["ls_task_id"],
                    "item_id": prev["item_id"],
                    "labeler_id": prev["labeler_id"],
                    "label": None,
                    "lead_time_s": None,
                    "created_at": None,
                    "updated_at": now,
                    "synced_at": now,
                    "supersedes": prev["id"],
                    "deleted": True,
                    "content_hash": tombstone_hash,
                }
            )
        for chunk in chunked(rows, 1000):
            conn.execute(annotations_table.insert(), list(chunk))
        known = {r[0] for r in conn.execute(sa.select(labelers_table.c.labeler_id))}
        fresh = sorted({r["labeler_id"] for r in rows if not r["deleted"]} - known)
        if fresh:
            conn.execute(
                labelers_table.insert(),
                [{"labeler_id": lid, "display_name": names.get(lid), "first_seen_at": now} for lid in fresh],
            )
        report.new_labelers = fresh
        conn.execute(
            sync_watermarks_table.update()
            .where(sync_watermarks_table.c.ls_project_id == project_id)
            .values(snapshot_at=snapshot_at, synced_at=now)
        )
    return report


# --- tasks -------------------------------------------------------------------------------------


def queue_candidates(store: LabelStore, project_id: int) -> list[Candidate]:
    """Active items with no task in this project yet, with their newest prelabel when one exists."""
    queued = sa.select(tasks_table.c.item_id).where(tasks_table.c.ls_project_id == project_id)
    rows = store.fetch(
        sa.select(items_table.c.item_id, items_table.c.gold_label).where(
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
        )
        for r in rows
    ]


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


def pending_tasks(store: LabelStore, project_id: int) -> list[dict[str, Any]]:
    """Reserved tasks not yet linked to a Label Studio task, in queue order (reservation id)."""
    return store.fetch(
        sa.select(tasks_table.c.id, tasks_table.c.item_id, items_table.c.uri, tasks_table.c.model_version)
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


def gold_labels(store: LabelStore, item_ids: Iterable[str] | None = None) -> dict[str, Any]:
    """item_id -> gold label of gold items (all, or only those in ``item_ids``)."""
    stmt = sa.select(items_table.c.item_id, items_table.c.gold_label).where(items_table.c.gold_label.isnot(None))
    rows = store.fetch(stmt)
    wanted = set(item_ids) if item_ids is not None else None
    return {r["item_id"]: r["gold_label"] for r in rows if wanted is None or r["item_id"] in wanted}


def newest_prelabels(store: LabelStore, item_ids: Sequence[str]) -> dict[str, tuple[dict[str, float], str]]:
    """item_id -> (class probabilities, model version) of the newest prelabel of each listed item that has one."""
    if not item_ids:
        return {}
    p = prelabels_table
    rows = store.fetch(
        sa.select(p.c.item_id, p.c.probs, p.c.model_version).where(p.c.item_id.in_(item_ids)).order_by(p.c.computed_at)
    )
    return {r["item_id"]: (r["probs"], r["model_version"]) for r in rows}  # ordered by time: the newest wins


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


def annotation_totals(store: LabelStore) -> AnnotationTotals:
    current = store.fetch(
        sa.select(
            sa.func.count().label("n"), sa.func.count(sa.distinct(sa.column("item_id"))).label("items")
        ).select_from(current_annotations_query().subquery())
    )[0]
    return AnnotationTotals(int(current["n"]), int(current["items"]), store.count(annotations_table))
