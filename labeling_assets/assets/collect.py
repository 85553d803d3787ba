"""Stage 4, collect: every version of every Label Studio annotation, appended to the store exactly once."""

import dagster as dg
import sqlalchemy as sa

from labeling_assets.constants import GROUP_COLLECT, OWNERS
from labeling_assets.core.store.labelstudio_sync import sync_annotations
from labeling_assets.core.store.schema import annotations_table, current_annotations_query, labelers_table
from labeling_assets.partitions import labelers as labelers_partitions
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
)
def annotations(
    context: dg.AssetExecutionContext,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
) -> dg.MaterializeResult:
    """Append-only versions of the Label Studio annotations: edits become new versions, deletions tombstones."""
    store = label_store.get_store()
    project_id = label_studio.find_project_id()
    if project_id is None:
        raise dg.Failure(
            f"Label Studio project {label_studio.project_title!r} does not exist: materialize labeling_tasks first"
        )
    client = label_studio.get_client()
    remote = client.export_annotations(project_id)
    context.log.info(f"exported {len(remote)} annotations from Label Studio project {project_id}")
    report = sync_annotations(store, project_id, remote)
    context.log.info(
        f"stored {report.new} new, {report.updated} updated, {report.deleted} deleted; "
        f"{report.unchanged} unchanged, {report.unknown_task} on tasks not queued by us ({report.seconds:.2f}s)"
    )
    # Every labeler in the store gets a partition (idempotent, and repairs a crash after the store commit).
    all_labelers = sorted(r["labeler_id"] for r in store.fetch(sa.select(labelers_table.c.labeler_id)))
    known = set(context.instance.get_dynamic_partitions(labelers_partitions.name))
    to_add = [lid for lid in all_labelers if lid not in known]
    if to_add:
        context.instance.add_dynamic_partitions(labelers_partitions.name, to_add)
    current = store.fetch(
        sa.select(
            sa.func.count().label("n"), sa.func.count(sa.distinct(sa.column("item_id"))).label("items")
        ).select_from(current_annotations_query().subquery())
    )[0]
    return dg.MaterializeResult(
        metadata={
            "project_id": dg.MetadataValue.int(project_id),
            "remote_annotations": dg.MetadataValue.int(len(remote)),
            "new": dg.MetadataValue.int(report.new),
            "updated": dg.MetadataValue.int(report.updated),
            "deleted": dg.MetadataValue.int(report.deleted),
            "unchanged": dg.MetadataValue.int(report.unchanged),
            "not_ours": dg.MetadataValue.int(report.unknown_task),
            "new_labelers": dg.MetadataValue.json(report.new_labelers),
            "labeler_partitions_added": dg.MetadataValue.int(len(to_add)),
            "current_annotations": dg.MetadataValue.int(int(current["n"])),
            "annotated_items": dg.MetadataValue.int(int(current["items"])),
            "stored_versions": dg.MetadataValue.int(store.count(annotations_table)),
            "sync_seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        }
    )
