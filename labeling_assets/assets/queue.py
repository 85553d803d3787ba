"""Stage 3, queue: items pushed to Label Studio as tasks, most informative first, gold hidden among them.

The workflow is one core service, ``core/labelstudio/queue.py``'s ``run_queue`` (``run_blind_queue`` in blind
mode); this asset ensures the Label Studio projects, serves the images and turns the report into metadata.
"""

import dagster as dg
from pydantic import Field

from labeling_assets import stage
from labeling_assets.constants import GROUP_QUEUE, QUEUE_POOL
from labeling_assets.core.allocation.live import AllocatorSettings
from labeling_assets.core.consensus.adaptive_gold import GoldRates
from labeling_assets.core.consensus.class_schema import ClassSchemaError
from labeling_assets.core.consensus.retraction import DEFAULT_MAX_OVERLAP
from labeling_assets.core.labelstudio.queue import QueueOptions, run_blind_queue, run_queue
from labeling_assets.core.labelstudio.tasks import PrelabelVisibility, Strategy
from labeling_assets.core.tasks import task_kind
from labeling_assets.resources.errors import as_failure
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.metadata import as_metadata
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource


class QueueConfig(dg.Config):
    max_new_tasks: int = 1000
    """How many new items to queue in this run."""
    gold_rate: float = 0.1
    """Fraction of the new tasks that are (hidden) gold items (the project's adaptive_gold replaces it)."""
    overlap: int = 3
    """Labelers per task (Label Studio maximum_annotations)."""
    strategy: Strategy = "uncertainty"
    """uncertainty | margin | entropy | random | diversity | hybrid | committee (random is the baseline every
    strategy must beat; diversity: k-center on image embeddings, hybrid: k-center over the most uncertain, committee:
    disagreement of the models' pre-labels; core/labelstudio/selection.py says what each falls back to)."""
    seed: int = 0
    max_overlap: int = Field(
        default=DEFAULT_MAX_OVERLAP,
        ge=1,
        description="Cap on a task's overlap when open more_annotators review requests raise it (one per round); "
        "items still unsure at the cap are reported for expert review.",
    )
    blind_reassign_after_hours: float | None = Field(
        default=48.0,
        gt=0,
        description="Blind mode: an item whose task has waited this long in a labeler's own project without an "
        "answer goes to one more labeler (audited; the first labeler keeps the task, a late answer counts). None: "
        "never (a slow labeler's items then move only when they are paused or leave blind_labelers).",
    )
    prelabel_wait_minutes: float = Field(
        default=10.0,
        ge=0,
        description="Once a model pre-labels items, a new item without its pre-label yet waits up to this long for "
        "it (its pre-label run follows its ingest) instead of reaching labelers without the model's prediction; "
        "past it, the item is queued without one. 0: never wait.",
    )
    prelabel_visibility: PrelabelVisibility = Field(
        default="all",
        description="Which tasks show the model's pre-label: all | none | not_gold (pre-labels anchor answers; "
        "hiding them on gold keeps gold accuracy a measure of the labeler, not of the model).",
    )


# deps: the items, ordered and pre-filled by their newest pre-labels
@stage.asset(GROUP_QUEUE, deps=["raw_images", "prelabels"], kinds={"labelstudio", "sql"}, pool=QUEUE_POOL)
def labeling_tasks(
    context: dg.AssetExecutionContext,
    config: QueueConfig,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult[None]:
    """Label Studio tasks, one per queued item (never two), ordered by prelabel uncertainty with gold interleaved."""
    store, client, kind = label_store.get_store(), label_studio.get_client(), task_kind(project.task_type)
    options = QueueOptions(
        classes=list(project.classes), data_path=project.data_path, max_new_tasks=config.max_new_tasks,
        gold_rate=config.gold_rate, overlap=config.overlap, strategy=config.strategy, seed=config.seed,
        max_overlap=config.max_overlap, blind_reassign_after_hours=config.blind_reassign_after_hours,
        prelabel_wait_minutes=config.prelabel_wait_minutes, prelabel_visibility=config.prelabel_visibility,
        allow_empty=project.allow_empty_set, allow_overlap=project.allow_overlapping_spans,
        class_list_change_reason=project.class_list_change_reason, fields=project.answer_fields(),
        class_changes=project.declared_class_changes(), allocation=project.allocation,
        allocator=AllocatorSettings(random_share=project.allocation_random_share, seed=config.seed),
        pay_rate_per_hour=project.pay_rate_per_hour, pay_rates_per_hour=dict(project.pay_rates_per_hour),
        reviewers=list(project.reviewers), gold_gate_threshold=project.gold_gate_threshold, run_id=context.run_id,
        adaptive_gold=GoldRates(project.gold_rate_new_labeler, project.gold_rate_floor) if project.adaptive_gold else None,
    )  # fmt: skip
    label_config = project.label_config()
    log, warn = context.log.info, context.log.warning
    if label_studio.blind:  # one project per labeler (core/labelstudio/blind.py)
        projects = label_studio.ensure_blind_projects(classes=project.classes, label_config=label_config)
        for project_id in projects.values():
            label_studio.serve_images(project_id, project.data_path / "raw", project.data_path)
        label_studio.ensure_webhooks(list(projects.values()))  # a warning at worst: the poll still runs
        try:
            report = run_blind_queue(store, client, kind, options, projects, log=log, warn=warn)
        except ClassSchemaError as exc:  # the declared class changes do not fit the new class list
            raise as_failure(exc) from None
        return dg.MaterializeResult(metadata=as_metadata(report))
    project_id = label_studio.ensure_project(classes=project.classes, overlap=config.overlap, label_config=label_config)
    images_served = label_studio.serve_images(project_id, project.data_path / "raw", project.data_path)
    webhook = label_studio.ensure_webhooks([project_id])  # a warning at worst: the poll still runs
    try:
        report = run_queue(store, client, kind, options, project_id, log=log, warn=warn)
    except ClassSchemaError as exc:
        raise as_failure(exc) from None
    return dg.MaterializeResult(
        metadata={
            "project_id": dg.MetadataValue.int(project_id),
            "project_url": dg.MetadataValue.url(f"{label_studio.resolved_url}/projects/{project_id}/data"),
            "images_served": dg.MetadataValue.text(images_served),
            "webhook": dg.MetadataValue.text(webhook),
            **as_metadata(report),
        }
    )

