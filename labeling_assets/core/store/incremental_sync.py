"""The incremental sync's scan and its cursor: read only the tasks that changed, find the deleted ones.

Pure store logic (no HTTP): the caller passes the pages Label Studio returned and a way to list task ids.
See ``annotation_sync`` for how each page is written exactly once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from labeling_assets.core.store.annotation_sync import (
    RemoteTask,
    SyncReport,
    _aware,
    _ts,
    sync_changed_tasks,
)
from labeling_assets.core.store.heads_schema import annotation_heads_table, sync_cursors_table
from labeling_assets.core.store.schema import LabelStore, tasks_table


@dataclass(frozen=True)
class SyncCursor:
    """Where the incremental sync of a project stands (all None: never synced incrementally)."""

    changes_since: dt.datetime | None  # Label Studio's clock when the last complete scan began
    full_synced_at: dt.datetime | None
    incremental_synced_at: dt.datetime | None
    task_number: int | None = None  # Label Studio's task count then


def full_sync_reason(
    cursor: SyncCursor, now: dt.datetime, *, every: dt.timedelta | None, on_demand: bool = False
) -> str | None:
    """Why this sync must read the full snapshot, or None when changed tasks are enough.

    Args:
        cursor: the project's cursor. now: the time of the decision.
        every: how often the full reconciliation runs (None: never on a timer).
        on_demand: asked for by the run's config.
    """
    if on_demand:
        return "asked for (on demand)"
    if cursor.changes_since is None:
        return "no complete sync yet"
    if every is not None:
        last = cursor.full_synced_at
        if last is None or now - _aware(last) >= every:
            return f"periodic reconciliation (every {every.total_seconds() / 3600:g} h)"
    return None


def sync_cursor(store: LabelStore, project_id: int) -> SyncCursor:
    c = sync_cursors_table
    row = store.fetch(sa.select(c).where(c.c.ls_project_id == project_id))
    if not row:
        return SyncCursor(None, None, None, None)

    def aware(value: dt.datetime | None) -> dt.datetime | None:
        return _aware(value) if value is not None else None

    r = row[0]
    return SyncCursor(
        aware(r["changes_since"]), aware(r["full_synced_at"]), aware(r["incremental_synced_at"]), r["task_number"]
    )


def live_task_ids(store: LabelStore, project_id: int) -> set[int]:
    """Label Studio task ids of the project's tasks that hold at least one live annotation in the store."""
    h, t = annotation_heads_table, tasks_table
    stmt = (
        sa.select(h.c.ls_task_id)
        .distinct()
        .join(t, t.c.ls_task_id == h.c.ls_task_id)
        .where(t.c.ls_project_id == project_id, h.c.deleted.is_(False))
    )
    return {int(r["ls_task_id"]) for r in store.fetch(stmt)}


def sync_scan(
    store: LabelStore,
    project_id: int,
    pages: Iterable[Sequence[RemoteTask]],
    *,
    snapshot_at: dt.datetime,
    changes_since: dt.datetime,
    task_number: int,
    remote_task_ids: Callable[[], Collection[int]],
    labeler_names: Mapping[str, str] | None = None,
) -> SyncReport:
    """One incremental scan: every page of changed tasks, then the tasks Label Studio no longer has.

    Each page commits on its own (a long scan keeps its progress); the last page commits together with the
    annotations of deleted tasks and the new cursor, so the cursor never covers rows that are not committed.

    A deleted task leaves no ``updated_at`` behind. Label Studio's task count tells of it: the count when the last
    scan began plus the tasks created since (all of them are in this scan) is the count now unless tasks were
    deleted. Only on a difference are all task ids listed (0.5 s per 1,000 tasks on Label Studio 1.23.2).

    Args:
        pages: pages of tasks changed since the cursor (minus the safety overlap), as Label Studio holds them.
        snapshot_at: our clock before the first page was read. changes_since: Label Studio's clock then.
        task_number: Label Studio's task count then (read with ``changes_since``).
        remote_task_ids: every task id Label Studio holds for the project now (called only when needed).
    """
    started = time.perf_counter()
    previous = sync_cursor(store, project_id)
    total = SyncReport(snapshot_at=_aware(snapshot_at), mode="incremental")
    pending: Sequence[RemoteTask] = ()
    created = 0
    for page in pages:
        if pending:
            total.add(sync_changed_tasks(store, project_id, pending, snapshot_at=snapshot_at, labeler_names=labeler_names))
            if total.stale:
                break
        pending = page
        created += sum(_created_after(t, previous.changes_since) for t in page)
    if not total.stale:
        gone: set[int] = set()
        if previous.task_number is None or task_number != previous.task_number + created:
            gone = live_task_ids(store, project_id) - set(remote_task_ids())
            total.task_ids_listed = True
        total.add(
            sync_changed_tasks(
                store, project_id, pending, snapshot_at=snapshot_at, gone_task_ids=gone,
                changes_since=changes_since, task_number=task_number, labeler_names=labeler_names,
            )  # fmt: skip
        )
    total.seconds = time.perf_counter() - started
    return total


def _created_after(task: RemoteTask, since: dt.datetime | None) -> bool:
    created = _ts(task.created_at)
    return since is None or created is None or created > since
