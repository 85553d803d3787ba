"""The tasks Label Studio's webhooks said were touched, until a sync stored them.

The webhook receiver (``labeling_assets/webhooks``) appends one row per touched task (or per deleted annotation,
whose event names no task) and returns; the annotation sensor asks a collect run to sync just those tasks; the
run marks the rows consumed once its sync committed. Rows are never the data: the incremental poll still reads
every change, so a lost webhook costs latency, never an annotation. A collect run of any kind that committed a
sync taken after a row arrived consumes it too (that sync read the task as it was then).

The table: ``webhook_inbox_schema`` (migration 22).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from labeling_assets.core.store.heads_schema import annotation_heads_table
from labeling_assets.core.store.schema import LabelStore, chunked, utcnow
from labeling_assets.core.store.webhook_inbox_schema import webhook_inbox_table


@dataclass(frozen=True)
class Touched:
    """One touched thing an event named: a task, or an annotation whose task the event did not say."""

    action: str
    ls_project_id: int | None
    ls_task_id: int | None = None
    ls_annotation_id: int | None = None


@dataclass(frozen=True)
class Pending:
    """The rows not consumed yet: the highest row id, and the task ids they resolve to."""

    through_id: int
    task_ids: tuple[int, ...]
    rows: int


def record_touched(store: LabelStore, touched: Iterable[Touched], *, now: dt.datetime | None = None) -> int:
    """Append the touched tasks of one event (one transaction); returns the rows written."""
    at = now or utcnow()
    rows = [
        {"ls_project_id": t.ls_project_id, "ls_task_id": t.ls_task_id, "ls_annotation_id": t.ls_annotation_id,
         "action": t.action[:64], "received_at": at}
        for t in touched
    ]  # fmt: skip
    if rows:
        with store.begin() as conn:
            conn.execute(sa.insert(webhook_inbox_table), rows)
    return len(rows)


def pending(store: LabelStore, *, limit: int = 10_000) -> Pending | None:
    """The rows no sync has consumed yet (None: none), their task ids resolved through the stored annotations.

    An annotation the store never held (deleted before any sync read it) resolves to no task: nothing to sync.
    """
    w, h = webhook_inbox_table, annotation_heads_table
    rows = store.fetch(
        sa.select(w.c.id, w.c.ls_task_id, w.c.ls_annotation_id).where(w.c.consumed_at.is_(None)).order_by(w.c.id)
        .limit(limit)
    )  # fmt: skip
    if not rows:
        return None
    tasks = {int(r["ls_task_id"]) for r in rows if r["ls_task_id"] is not None}
    annotation_ids = sorted({int(r["ls_annotation_id"]) for r in rows if r["ls_task_id"] is None and r["ls_annotation_id"] is not None})
    for chunk in chunked(annotation_ids, 900):
        found = store.fetch(sa.select(h.c.ls_task_id).where(h.c.ls_annotation_id.in_(chunk)))
        tasks.update(int(r["ls_task_id"]) for r in found if r["ls_task_id"] is not None)
    return Pending(max(int(r["id"]) for r in rows), tuple(sorted(tasks)), len(rows))


def consume_through(store: LabelStore, through_id: int, *, now: dt.datetime | None = None) -> int:
    """Mark every pending row up to ``through_id`` consumed (a targeted sync stored their tasks); returns the count."""
    w = webhook_inbox_table
    with store.begin() as conn:
        done = conn.execute(
            sa.update(w).where(w.c.consumed_at.is_(None), w.c.id <= through_id).values(consumed_at=now or utcnow())
        )
    return int(done.rowcount or 0)


def consume_received_before(store: LabelStore, snapshot_at: dt.datetime, *, now: dt.datetime | None = None) -> int:
    """Mark consumed every pending row that arrived before a committed sync's snapshot was taken (that sync read
    the tasks as they were after the event); returns the count."""
    w = webhook_inbox_table
    with store.begin() as conn:
        done = conn.execute(
            sa.update(w).where(w.c.consumed_at.is_(None), w.c.received_at < snapshot_at).values(consumed_at=now or utcnow())
        )
    return int(done.rowcount or 0)


def pending_count(store: LabelStore, task_ids: Collection[int] | None = None) -> int:
    """Rows not consumed yet (of ``task_ids`` when given): what the receiver recorded and no sync stored."""
    w = webhook_inbox_table
    stmt = sa.select(sa.func.count()).select_from(w).where(w.c.consumed_at.is_(None))
    if task_ids is not None:
        stmt = stmt.where(w.c.ls_task_id.in_(sorted(task_ids)))
    with store.begin() as conn:
        return int(conn.execute(stmt).scalar() or 0)
