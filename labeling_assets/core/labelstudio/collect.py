"""The collect stage as one service: every version of every Label Studio annotation, appended to the store once.

``run_collect(store, client, project_ids, options)`` is what the ``annotations`` asset calls (the shape of
``ingest_source`` and ``run_consensus``). A run reads only the tasks changed since the last one (cost proportional
to the change); a full export reconciles now and then (first sync, every ``full_every_hours``, or on demand) and
reports any drift it repairs. The returned report holds plain values (``Json`` for values shown as JSON).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.labelstudio.client import SyncClient
from labeling_assets.core.store.annotation_sync import SyncReport, sync_changed_tasks
from labeling_assets.core.store.human_loop import record_labeler_names
from labeling_assets.core.store.incremental_sync import (
    full_sync_reason,
    live_task_ids,
    sync_cursor,
    sync_scan,
)
from labeling_assets.core.store.labelstudio_sync import (
    AnnotationTotals,
    annotation_totals,
    labeler_ids,
    sync_annotations,
)
from labeling_assets.core.store.schema import LabelStore, utcnow
from labeling_assets.core.store.webhook_inbox import consume_received_before, consume_through
from labeling_assets.core.tasks.kind import Json

LevelLog = Callable[[int, str], None]  # (logging level, line)


def _quiet(_level: int, _line: str) -> None:
    return None


@dataclass(frozen=True)
class CollectOptions:
    """The run's knobs (the asset's CollectConfig)."""

    full: bool = False
    full_every_hours: float = 24.0
    overlap_s: float = 60.0
    page_size: int = 1000
    # A run the webhooks asked for: sync just these tasks (the cursor stays), then consume the inbox rows up to
    # ``inbox_through``. More than ``MAX_TOUCHED_TASKS``: the incremental scan reads them for less.
    task_ids: tuple[int, ...] = ()
    inbox_through: int = 0


MAX_TOUCHED_TASKS = 200


@dataclass(frozen=True)
class Collected:
    """What a collect run did: the report, and every labeler's name (the key of their partition)."""

    report: dict[str, Any]
    labeler_keys: list[str]


def run_collect(
    store: LabelStore, client: SyncClient, project_ids: Sequence[int], options: CollectOptions, *,
    blind: bool = False, log: LevelLog = _quiet,
) -> Collected:  # fmt: skip
    """Sync each project (the shared one, or every labeler's in ``blind`` mode), then record the labelers' names.

    The tasks the webhooks named (``options.task_ids``) are synced alone when they are few; otherwise, and on every
    poll, the projects' changed tasks. The webhook inbox rows a committed sync covered are then consumed.
    """
    if options.task_ids and len(options.task_ids) <= MAX_TOUCHED_TASKS and not options.full:
        synced = [_sync_touched(store, client, project_ids, options, log)]
    else:
        synced = [_sync_project(store, client, project_id, options, log) for project_id in project_ids]
    reason, report = synced[0] if len(synced) == 1 else _folded(synced)
    consumed = _consume_inbox(store, options, synced)
    # Every labeler in the store gets a name (idempotent, and repairs a crash after the store commit); the numeric
    # id stays the store's key.
    keys = record_labeler_names(store, client.list_users())
    out = {
        "project_id": int(project_ids[0]),
        **({"blind_projects_synced": Json(list(project_ids))} if blind else {}),
        "sync_mode": report.mode,
        "full_sync_reason": reason or "-",
        "webhook_tasks_synced": len(options.task_ids) if report.mode == "touched" else 0,
        "webhook_events_consumed": consumed,
        **_sync_report(report, annotation_totals(store)),
    }
    return Collected(out, sorted(keys[i] for i in labeler_ids(store)))


def _sync_project(
    store: LabelStore, client: SyncClient, project_id: int, options: CollectOptions, log: LevelLog
) -> tuple[str | None, SyncReport]:
    """Sync one project (its own cursor, watermark and full-reconciliation clock); (full sync reason, report)."""
    cursor = sync_cursor(store, project_id)
    every = dt.timedelta(hours=options.full_every_hours) if options.full_every_hours else None
    reason = full_sync_reason(cursor, utcnow(), every=every, on_demand=options.full)
    overlap = dt.timedelta(seconds=options.overlap_s)
    # Both taken before anything is read: our clock orders this sync against others (a snapshot older than one
    # already committed is refused), Label Studio's becomes the cursor the next run reads changes after.
    server_now, task_number = client.clock_and_task_count(project_id)
    snapshot_at = utcnow()
    if reason is not None:
        remote = client.export_annotations(project_id)
        log(logging.INFO, f"full sync ({reason}): exported {len(remote)} annotations from project {project_id}")
        drift_before = cursor.changes_since - overlap if cursor.changes_since else None
        report = sync_annotations(
            store, project_id, remote, snapshot_at=snapshot_at, changes_since=server_now, task_number=task_number,
            drift_before=drift_before,
        )  # fmt: skip
    else:
        assert cursor.changes_since is not None
        pages = client.changed_tasks_since(project_id, cursor.changes_since - overlap, page_size=options.page_size)
        report = sync_scan(
            store, project_id, pages, snapshot_at=snapshot_at, changes_since=server_now, task_number=task_number,
            remote_task_ids=lambda: client.task_ids(project_id),
        )  # fmt: skip
    log(*_outcome_line(project_id, report))
    return reason, report


def _sync_touched(
    store: LabelStore, client: SyncClient, project_ids: Sequence[int], options: CollectOptions, log: LevelLog
) -> tuple[str | None, SyncReport]:
    """Sync just the tasks the webhooks named, each against its project; the cursor stays where it is (the poll's)."""
    snapshot_at = utcnow()  # before anything is read: orders this sync against others (as a scan's)
    found, gone = client.tasks_by_id(project_ids, options.task_ids)
    total = SyncReport(snapshot_at=snapshot_at, mode="touched")
    for project_id in project_ids:
        # A 404 is a deleted task only where the store holds it in this project (the poll's rule for gone tasks).
        ended = gone & live_task_ids(store, project_id)
        tasks = found.get(int(project_id), [])
        if tasks or ended:
            total.add(sync_changed_tasks(store, project_id, tasks, snapshot_at=snapshot_at, gone_task_ids=ended))
    log(logging.INFO, f"webhook tasks {', '.join(map(str, options.task_ids[:20]))}: " + _outcome_line(0, total)[1])
    return None, total


def _consume_inbox(store: LabelStore, options: CollectOptions, synced: list[tuple[str | None, SyncReport]]) -> int:
    """Consume the webhook inbox rows this run covered: the ones it was asked for, or every row that arrived before
    a committed poll's snapshot (it read those tasks after the event). A stale (refused) sync consumes nothing."""
    reports = [r for _, r in synced]
    if any(r.stale for r in reports):
        return 0
    consumed = consume_through(store, options.inbox_through) if options.inbox_through else 0
    taken = [r.snapshot_at for r in reports if r.snapshot_at is not None]
    if taken and all(r.mode != "touched" for r in reports):
        consumed += consume_received_before(store, min(taken))
    return consumed


def _folded(synced: list[tuple[str | None, SyncReport]]) -> tuple[str | None, SyncReport]:
    """Blind mode: the projects' syncs as one (counts added; the mode "mixed" when they differ)."""
    modes = {r.mode for _, r in synced}
    total = SyncReport(mode=modes.pop() if len(modes) == 1 else "mixed")
    for _, r in synced:
        total.add(r)
    reasons = sorted({why for why, _ in synced if why})
    return ("; ".join(reasons) or None), total


def _outcome_line(project_id: int, report: SyncReport) -> tuple[int, str]:
    """The log level and line saying what the sync did (a refused stale snapshot is a warning)."""
    if report.stale:
        assert report.snapshot_at is not None and report.committed_snapshot_at is not None
        return logging.WARNING, (
            f"refused a stale snapshot of Label Studio project {project_id}: taken at "
            f"{report.snapshot_at.isoformat()}, but one taken at {report.committed_snapshot_at.isoformat()} "
            "is already in the store (another collect run overlapped); nothing written"
        )
    line = (
        f"{report.mode} sync stored {report.new} new, {report.updated} updated, {report.deleted} deleted; "
        f"{report.unchanged} unchanged, {report.unknown_task} on tasks not queued by us ({report.seconds:.2f}s)"
    )
    if report.mode == "incremental":
        line += f"; {report.tasks_scanned} changed tasks read, {report.tasks_gone} deleted tasks found"
    if report.unreadable:  # stored and skipped as votes: a person may want to fix them in Label Studio
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(report.unreadable.items()))
        first = report.unreadable_examples[0]
        line += (
            f"; {sum(report.unreadable.values())} answers hold no label ({counts}), stored and not counted as "
            f"votes, e.g. annotation {first['ls_annotation_id']}: {first['detail']}"
        )
    if report.drift:  # the full reconciliation repaired what the incremental scans had missed
        return logging.WARNING, f"{line}; DRIFT repaired: {report.drift} versions the incremental sync had missed"
    return (logging.WARNING if report.unreadable else logging.INFO), line


def _sync_report(report: SyncReport, totals: AnnotationTotals) -> dict[str, Any]:
    return {
        "stale_snapshot_refused": report.stale,
        "new": report.new,
        "updated": report.updated,
        "deleted": report.deleted,
        "unchanged": report.unchanged,
        "not_ours": report.unknown_task,
        "tasks_scanned": report.tasks_scanned,
        "tasks_gone": report.tasks_gone,
        "task_ids_listed": report.task_ids_listed,
        "drift_repaired": report.drift,
        "changes_since": report.changes_since.isoformat() if report.changes_since else "-",
        "new_labelers": Json(report.new_labelers),
        # Answers this sync read that hold no label (a shape that holds none), by reason; stored, skipped as votes.
        "unreadable_answers": Json(dict(sorted(report.unreadable.items()))),
        "unreadable_examples": Json(report.unreadable_examples),
        "cancelled": report.cancelled,
        "current_annotations": totals.current,
        "annotated_items": totals.annotated_items,
        "current_unreadable_answers": totals.unreadable,
        "stored_versions": totals.stored_versions,
        "sync_seconds": float(round(report.seconds, 3)),
    }
