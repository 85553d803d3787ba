"""Stage 4, collect: every version of every Label Studio annotation, appended to the store exactly once.

A run reads only the tasks changed since the last one (cost proportional to the change); a full export
reconciles now and then (first sync, every ``full_every_hours``, or on demand) and reports any drift it repairs.
"""

import datetime as dt
import logging

import dagster as dg
from pydantic import Field

from labeling_assets.constants import GROUP_COLLECT, OWNERS, SYNC_POOL
from labeling_assets.core.store.human_loop import record_labeler_names
from labeling_assets.core.store.incremental_sync import full_sync_reason, sync_cursor, sync_scan
from labeling_assets.core.store.labelstudio_sync import (
    AnnotationTotals,
    SyncReport,
    annotation_totals,
    labeler_ids,
    sync_annotations,
)
from labeling_assets.core.store.schema import LabelStore, utcnow
from labeling_assets.partitions import LABELERS
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource


class CollectConfig(dg.Config):
    full: bool = Field(default=False, description="Reconcile with Label Studio's full export now (on demand).")
    full_every_hours: float = Field(
        default=24.0, ge=0, description="Full reconciliation at most this long after the last one; 0: only on demand."
    )
    overlap_s: float = Field(
        default=60.0, ge=0, description="Changed tasks are read from this long before the cursor (clock resolution, "
        "transactions in flight when the last scan began); re-read tasks write nothing.",
    )
    page_size: int = Field(default=1000, ge=1, description="Changed tasks per request (and per store transaction).")


@dg.asset(
    group_name=GROUP_COLLECT,
    kinds={"labelstudio", "sql"},
    owners=OWNERS,
    deps=["labeling_tasks"],
    # A Label Studio restart mid-export fails the attempt without writing anything (one transaction):
    # retrying is safe and lets a run requested by the sensor still land.
    retry_policy=dg.RetryPolicy(max_retries=3, delay=15),
    # One sync at a time (limit 1: dagster.yaml's pools default_limit), whichever way the run was launched:
    # the daemon's queue, the UI, or the CLI's in-process run. The store's watermark keeps order anyway.
    pool=SYNC_POOL,
)
def annotations(
    context: dg.AssetExecutionContext,
    config: CollectConfig,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
) -> dg.MaterializeResult[None]:
    """Append-only versions of the Label Studio annotations: edits become new versions, deletions tombstones."""
    store = label_store.get_store()
    project_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
    if not project_ids:
        raise dg.Failure(
            f"Label Studio project {label_studio.resolved_project_title!r} does not exist: materialize labeling_tasks first"
        )
    client = label_studio.get_client()
    synced = [_sync_project(context, store, client, project_id, config) for project_id in project_ids]
    reason, report = synced[0] if len(synced) == 1 else _folded(synced)
    # Every labeler in the store gets a partition keyed by their Label Studio name (idempotent, and repairs a
    # crash after the store commit); the numeric id stays the store's key.
    keys = record_labeler_names(store, client.list_users())
    added = _add_labeler_partitions(context.instance, sorted(keys[i] for i in labeler_ids(store)))
    return dg.MaterializeResult(
        metadata={
            "project_id": dg.MetadataValue.int(project_ids[0]),
            **({"blind_projects_synced": dg.MetadataValue.json(project_ids)} if label_studio.blind else {}),
            "sync_mode": dg.MetadataValue.text(report.mode),
            "full_sync_reason": dg.MetadataValue.text(reason or "-"),
            **_sync_metadata(report, annotation_totals(store)),
            "labeler_partitions_added": dg.MetadataValue.int(len(added)),
        }
    )


def _sync_project(
    context: dg.AssetExecutionContext, store: LabelStore, client: LabelStudioClient, project_id: int,
    config: CollectConfig,
) -> tuple[str | None, SyncReport]:  # fmt: skip
    """Sync one project (its own cursor, watermark and full-reconciliation clock); (full sync reason, report)."""
    cursor = sync_cursor(store, project_id)
    every = dt.timedelta(hours=config.full_every_hours) if config.full_every_hours else None
    reason = full_sync_reason(cursor, utcnow(), every=every, on_demand=config.full)
    overlap = dt.timedelta(seconds=config.overlap_s)
    # Both taken before anything is read: our clock orders this sync against others (a snapshot older than one
    # already committed is refused), Label Studio's becomes the cursor the next run reads changes after.
    server_now, task_number = client.clock_and_task_count(project_id)
    snapshot_at = utcnow()
    if reason is not None:
        remote = client.export_annotations(project_id)
        context.log.info(f"full sync ({reason}): exported {len(remote)} annotations from project {project_id}")
        drift_before = cursor.changes_since - overlap if cursor.changes_since else None
        report = sync_annotations(
            store, project_id, remote, snapshot_at=snapshot_at, changes_since=server_now, task_number=task_number,
            drift_before=drift_before,
        )  # fmt: skip
    else:
        assert cursor.changes_since is not None
        pages = client.changed_tasks_since(project_id, cursor.changes_since - overlap, page_size=config.page_size)
        report = sync_scan(
            store, project_id, pages, snapshot_at=snapshot_at, changes_since=server_now, task_number=task_number,
            remote_task_ids=lambda: client.task_ids(project_id),
        )  # fmt: skip
    context.log.log(*_outcome_line(project_id, report))
    return reason, report


def _folded(synced: list[tuple[str | None, SyncReport]]) -> tuple[str | None, SyncReport]:
    """Blind mode: the projects' syncs as one (counts added; the mode "mixed" when they differ)."""
    modes = {r.mode for _, r in synced}
    total = SyncReport(mode=modes.pop() if len(modes) == 1 else "mixed")
    for _, r in synced:
        total.add(r)
    reasons = sorted({why for why, _ in synced if why})
    return ("; ".join(reasons) or None), total


def _add_labeler_partitions(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Add a labelers partition for each key (a labeler's name) that has none yet; returns the keys added."""
    known = set(instance.get_dynamic_partitions(LABELERS))
    to_add = [key for key in keys if key not in known]
    if to_add:
        instance.add_dynamic_partitions(LABELERS, to_add)
    return to_add


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


def _sync_metadata(report: SyncReport, totals: AnnotationTotals) -> dict[str, dg.MetadataValue]:
    return {
        "stale_snapshot_refused": dg.MetadataValue.bool(report.stale),
        "new": dg.MetadataValue.int(report.new),
        "updated": dg.MetadataValue.int(report.updated),
        "deleted": dg.MetadataValue.int(report.deleted),
        "unchanged": dg.MetadataValue.int(report.unchanged),
        "not_ours": dg.MetadataValue.int(report.unknown_task),
        "tasks_scanned": dg.MetadataValue.int(report.tasks_scanned),
        "tasks_gone": dg.MetadataValue.int(report.tasks_gone),
        "task_ids_listed": dg.MetadataValue.bool(report.task_ids_listed),
        "drift_repaired": dg.MetadataValue.int(report.drift),
        "changes_since": dg.MetadataValue.text(report.changes_since.isoformat() if report.changes_since else "-"),
        "new_labelers": dg.MetadataValue.json(report.new_labelers),
        # Answers this sync read that hold no label (a shape that holds none), by reason; stored, skipped as votes.
        "unreadable_answers": dg.MetadataValue.json(dict(sorted(report.unreadable.items()))),
        "unreadable_examples": dg.MetadataValue.json(report.unreadable_examples),
        "cancelled": dg.MetadataValue.int(report.cancelled),
        "current_annotations": dg.MetadataValue.int(totals.current),
        "annotated_items": dg.MetadataValue.int(totals.annotated_items),
        "current_unreadable_answers": dg.MetadataValue.int(totals.unreadable),
        "stored_versions": dg.MetadataValue.int(totals.stored_versions),
        "sync_seconds": dg.MetadataValue.float(round(report.seconds, 3)),
    }
