"""Reads and writes of ``alerts_sent`` and the store facts alerts are about (automatic pauses, a stalled queue)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from labeling_assets.core.store.alerts_schema import alerts_sent_table
from labeling_assets.core.store.human_loop_schema import labeler_pauses_table
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    current_annotations_query,
    tasks_table,
    utcnow,
)


def sent_keys(store: LabelStore, channel: str) -> set[str]:
    t = alerts_sent_table
    return {r["alert_key"] for r in store.fetch(sa.select(t.c.alert_key).where(t.c.channel == channel))}


def record_sent(store: LabelStore, key: str, channel: str, text: str) -> None:
    """Remember a delivered alert (a second record of the same key and channel is a no-op)."""
    t = alerts_sent_table
    with store.begin() as conn:
        exists = conn.execute(sa.select(t.c.id).where(t.c.alert_key == key, t.c.channel == channel)).first()
        if exists is None:
            conn.execute(t.insert().values(alert_key=key[:300], channel=channel, text=text, sent_at=utcnow()))


def pause_events(store: LabelStore, actor: str) -> list[dict[str, object]]:
    """Pause events recorded by ``actor`` (id, labeler_id, reason, at), oldest first."""
    t = labeler_pauses_table
    query = sa.select(t.c.id, t.c.labeler_id, t.c.reason, t.c.at).where(t.c.action == "pause", t.c.actor == actor)
    return [dict(r) for r in store.fetch(query.order_by(t.c.id))]


@dataclass(frozen=True)
class QueueMotion:
    """Open tasks (pushed, fewer live answers than required) and when an answer last arrived in the store."""

    open_tasks: int
    ls_project_id: int | None  # the project most open tasks are in
    last_motion_at: dt.datetime | None  # the newest answer synced or task pushed

    def stalled_for(self, now: dt.datetime) -> dt.timedelta | None:
        """How long open tasks have waited with no answer arriving (None: nothing is open)."""
        if not self.open_tasks:
            return None
        return now - self.last_motion_at if self.last_motion_at else None


def queue_motion(store: LabelStore) -> QueueMotion:
    current = current_annotations_query().subquery()
    votes = sa.select(current.c.item_id, sa.func.count().label("n")).group_by(current.c.item_id).subquery()
    t = tasks_table
    open_rows = store.fetch(
        sa.select(t.c.ls_project_id, sa.func.count().label("n"))
        .select_from(t.outerjoin(votes, votes.c.item_id == t.c.item_id))
        .where(t.c.ls_task_id.is_not(None), sa.func.coalesce(votes.c.n, 0) < t.c.required_annotations)
        .group_by(t.c.ls_project_id)
        .order_by(sa.func.count().desc())
    )
    newest = store.fetch(sa.select(sa.func.max(annotations_table.c.synced_at).label("at")))
    last = newest[0]["at"] if newest else None
    if last is not None and last.tzinfo is None:  # SQLite hands back naive UTC
        last = last.replace(tzinfo=dt.UTC)
    if not open_rows:
        return QueueMotion(0, None, last)
    pushed = store.fetch(sa.select(sa.func.max(t.c.pushed_at).label("at")))
    newest_push = pushed[0]["at"] if pushed else None
    if newest_push is not None and newest_push.tzinfo is None:
        newest_push = newest_push.replace(tzinfo=dt.UTC)
    # A queue is moving when answers arrive; freshly pushed tasks restart the clock (nobody could answer them yet).
    moved = max((x for x in (last, newest_push) if x is not None), default=None)
    return QueueMotion(int(sum(r["n"] for r in open_rows)), int(open_rows[0]["ls_project_id"]), moved)
