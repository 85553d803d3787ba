"""Stage 4, collect: every version of every Label Studio annotation, appended to the store exactly once.

A run reads only the tasks changed since the last one (cost proportional to the change); a full export
reconciles now and then (first sync, every ``full_every_hours``, or on demand) and reports any drift it repairs.
The workflow is one core service, ``core/labelstudio/collect.py``'s ``run_collect``; this asset adds a labelers
partition for every new labeler and turns the report into metadata.
"""

import dagster as dg
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_COLLECT, SYNC_POOL
from labeling_assets.core.labelstudio.collect import CollectOptions, run_collect
from labeling_assets.core.store.guidelines import record_answer_guidelines
from labeling_assets.partitions import LABELERS
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.metadata import as_metadata
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
    task_ids: list[int] = Field(
        default_factory=list, description="Sync just these Label Studio tasks (the webhooks named them; the sensor "
        "sets this); empty: every task changed since the last sync.",
    )
    inbox_through: int = Field(
        default=0, ge=0, description="The last webhook inbox row these tasks came from: consumed once they are stored."
    )


@stage.asset(
    GROUP_COLLECT,
    deps=["labeling_tasks"],
    kinds={"labelstudio", "sql"},
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
    project_ids = label_studio.labeling_project_ids()  # the shared project, or every labeler's (blind mode)
    if not project_ids:  # not retried: no retry creates the project (3 x 15 s of waiting for nothing)
        raise dg.Failure(
            f"Label Studio project {label_studio.resolved_project_title!r} does not exist: materialize labeling_tasks first",
            allow_retries=False,
        )
    options = CollectOptions(full=config.full, full_every_hours=config.full_every_hours, overlap_s=config.overlap_s,
                             page_size=config.page_size, task_ids=tuple(config.task_ids),
                             inbox_through=config.inbox_through)  # fmt: skip
    store = label_store.get_store()
    collected = run_collect(store, label_studio.get_client(), project_ids, options,
                            blind=label_studio.blind, log=context.log.log)  # fmt: skip
    dated = record_answer_guidelines(store)  # each new answer version: the guideline version it was given under
    # Every labeler in the store gets a partition keyed by their Label Studio name.
    added = _add_labeler_partitions(context.instance, collected.labeler_keys)
    return dg.MaterializeResult(
        metadata={
            **as_metadata(collected.report),
            "labeler_partitions_added": dg.MetadataValue.int(len(added)),
            "answers_dated_by_guideline_version": dg.MetadataValue.int(dated),
        }
    )


def _add_labeler_partitions(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """Add a labelers partition for each key (a labeler's name) that has none yet; returns the keys added."""
    known = set(instance.get_dynamic_partitions(LABELERS))
    to_add = [key for key in keys if key not in known]
    if to_add:
        instance.add_dynamic_partitions(LABELERS, to_add)
    return to_add
