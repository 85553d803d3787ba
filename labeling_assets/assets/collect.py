"""Stage 4, collect: every version of every Label Studio annotation, appended to the store exactly once."""

import logging

import dagster as dg

from labeling_assets.constants import GROUP_COLLECT, OWNERS, SYNC_POOL
from labeling_assets.core.store.labelstudio_sync import (
    AnnotationTotals,
    SyncReport,
    annotation_totals,
    labeler_ids,
    sync_annotations,
)
from labeling_assets.core.store.schema import utcnow
from labeling_assets.partitions import LABELERS
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.store import LabelStoreResource


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
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
) -> dg.MaterializeResult[None]:
    """Append-only versions of the Label Studio annotations: edits become new versions, deletions tombstones."""
    store = label_store.get_store()
    project_id = label_studio.find_project_id()
    if project_id is None:
        raise dg.Failure(
            f"Label Studio project {label_studio.resolved_project_title!r} does not exist: materialize labeling_tasks first"
        )
    # Taken before the export is read: a snapshot older than one already committed is refused by the sync.
    snapshot_at = utcnow()
    remote = label_studio.get_client().export_annotations(project_id)
    context.log.info(f"exported {len(remote)} annotations from Label Studio project {project_id}")
    report = sync_annotations(store, project_id, remote, snapshot_at=snapshot_at)
    context.log.log(*_outcome_line(project_id, report))
    # Every labeler in the store gets a partition (idempotent, and repairs a crash after the store commit).
    added = _add_labeler_partitions(context.instance, labeler_ids(store))
    return dg.MaterializeResult(
        metadata={
            "project_id": dg.MetadataValue.int(project_id),
            "remote_annotations": dg.MetadataValue.int(len(remote)),
            **_sync_metadata(report, annotation_totals(store)),
            "labeler_partitions_added": dg.MetadataValue.int(len(added)),
        }
    )


def _add_labeler_partitions(instance: dg.DagsterInstance, labeler_ids: list[str]) -> list[str]:
    """Add a labelers partition for each id that has none yet; returns the ids added."""
    known = set(instance.get_dynamic_partitions(LABELERS))
    to_add = [lid for lid in labeler_ids if lid not in known]
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
    return logging.INFO, (
        f"stored {report.new} new, {report.updated} updated, {report.deleted} deleted; "
        f"{report.unchanged} unchanged, {report.unknown_task} on tasks not queued by us ({report.seconds:.2f}s)"
    )


def _sync_metadata(report: SyncReport, totals: AnnotationTotals) -> dict[str, dg.MetadataValue]:
    return {
        "stale_snapshot_refused": dg.MetadataValue.bool(report.stale),
        "new": dg.MetadataValue.int(report.new),
        "updated": dg.MetadataValue.int(report.updated),
        "deleted": dg.MetadataValue.int(report.deleted),
        "unchanged": dg.MetadataValue.int(report.unchanged),
        "not_ours": dg.MetadataValue.int(report.unknown_task),
        "new_labelers": dg.MetadataValue.json(report.new_labelers),
        "current_annotations": dg.MetadataValue.int(totals.current),
        "annotated_items": dg.MetadataValue.int(totals.annotated_items),
        "stored_versions": dg.MetadataValue.int(totals.stored_versions),
        "sync_seconds": dg.MetadataValue.float(round(report.seconds, 3)),
    }
