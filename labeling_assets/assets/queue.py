"""Stage 3, queue: items pushed to Label Studio as tasks, most informative first, gold hidden among them."""

from collections import Counter
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from labeling_assets.constants import GROUP_QUEUE, OWNERS
from labeling_assets.core.labelstudio_sync import (
    gold_labels,
    link_tasks,
    pending_tasks,
    queue_candidates,
    reserve_tasks,
)
from labeling_assets.core.queue import STRATEGIES, payload_leaks, select_queue, task_payload
from labeling_assets.core.store import LabelStore, prelabels, tasks
from labeling_assets.resources.labelstudio import LabelStudioResource
from labeling_assets.resources.project import ProjectSettings
from labeling_assets.resources.store import LabelStoreResource

IMPORT_BATCH = 1000


class QueueConfig(dg.Config):
    max_new_tasks: int = 1000
    """How many new items to queue in this run."""
    gold_rate: float = 0.1
    """Fraction of the new tasks that are (hidden) gold items."""
    overlap: int = 3
    """Annotators per task (Label Studio maximum_annotations)."""
    strategy: str = "uncertainty"
    """uncertainty | margin | entropy | random (random is the baseline every strategy must beat)."""
    seed: int = 0


def image_url(uri: str | None, data_root: Path) -> str:
    """How Label Studio's UI reaches the image: its local-files endpoint for files under the data folder."""
    if not uri:
        return ""
    path = Path(uri)
    if path.is_absolute():
        try:
            return f"/data/local-files/?d={path.resolve().relative_to(data_root.resolve())}"
        except ValueError:
            return uri
    return uri


@dg.asset(
    group_name=GROUP_QUEUE,
    kinds={"labelstudio", "sql"},
    owners=OWNERS,
    deps=["raw_images"],
)
def labeling_tasks(
    context: dg.AssetExecutionContext,
    config: QueueConfig,
    label_store: LabelStoreResource,
    label_studio: LabelStudioResource,
    project: ProjectSettings,
) -> dg.MaterializeResult:
    """Label Studio tasks, one per queued item (never two), ordered by prelabel uncertainty with gold interleaved."""
    if config.strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {config.strategy!r}")
    store = label_store.get_store()
    client = label_studio.get_client()
    project_id = label_studio.ensure_project(classes=project.classes, overlap=config.overlap)

    # Reserve first, push second, link last: a crash anywhere leaves reserved rows that the next run
    # links to tasks Label Studio already has instead of importing them again.
    queue = select_queue(
        queue_candidates(store, project_id),
        limit=config.max_new_tasks,
        gold_rate=config.gold_rate,
        strategy=config.strategy,
        seed=config.seed,
    )
    reserved = reserve_tasks(store, project_id, queue, overlap=config.overlap)
    relinked = link_tasks(store, project_id, client.task_ids_by_item(project_id))
    pending = pending_tasks(store, project_id)
    probs = _newest_probs(store, [p["item_id"] for p in pending])
    payloads = [
        task_payload(
            p["item_id"],
            image_url(p["uri"], project.data_path),
            probs=probs.get(p["item_id"], (None, None))[0],
            model_version=probs.get(p["item_id"], (None, None))[1],
        )
        for p in pending
    ]
    leaks = payload_leaks(payloads, gold_labels(store, [p["item_id"] for p in pending]))
    if leaks:  # defense in depth: the builder cannot leak, but nothing leaves if it ever did
        raise RuntimeError(f"refusing to push tasks that leak gold: {leaks[:5]}")
    created = 0
    for start in range(0, len(payloads), IMPORT_BATCH):
        created += client.import_tasks(project_id, payloads[start : start + IMPORT_BATCH])
        context.log.info(f"imported {min(start + IMPORT_BATCH, len(payloads))}/{len(payloads)} tasks")
    # Label Studio pre-fills from one model version: the one most of the pushed tasks carry.
    versions = Counter(p["predictions"][0]["model_version"] for p in payloads if "predictions" in p)
    if versions:
        client.show_predictions_of(project_id, max(sorted(versions), key=versions.__getitem__))
    linked = link_tasks(store, project_id, client.task_ids_by_item(project_id)) if payloads else 0
    totals = store.fetch(
        sa.select(tasks.c.is_gold, sa.func.count().label("n"))
        .where(tasks.c.ls_project_id == project_id, tasks.c.ls_task_id.isnot(None))
        .group_by(tasks.c.is_gold)
    )
    by_gold = {bool(r["is_gold"]): int(r["n"]) for r in totals}
    with_pred = sum(1 for p in payloads if "predictions" in p)
    return dg.MaterializeResult(
        metadata={
            "project_id": dg.MetadataValue.int(project_id),
            "project_url": dg.MetadataValue.url(f"{label_studio.url}/projects/{project_id}/data"),
            "selected": dg.MetadataValue.int(len(queue)),
            "reserved": dg.MetadataValue.int(reserved),
            "pushed": dg.MetadataValue.int(created),
            "linked": dg.MetadataValue.int(linked + relinked),
            "with_predictions": dg.MetadataValue.int(with_pred),
            "new_gold": dg.MetadataValue.int(sum(1 for q in queue if q.is_gold)),
            "tasks_total": dg.MetadataValue.int(sum(by_gold.values())),
            "gold_tasks_total": dg.MetadataValue.int(by_gold.get(True, 0)),
            "overlap": dg.MetadataValue.int(config.overlap),
            "strategy": dg.MetadataValue.text(config.strategy),
        }
    )


def _newest_probs(store: LabelStore, item_ids: list[str]) -> dict[str, tuple[dict[str, float], str]]:
    if not item_ids:
        return {}
    rows = store.fetch(
        sa.select(prelabels.c.item_id, prelabels.c.probs, prelabels.c.model_version, prelabels.c.computed_at)
        .where(prelabels.c.item_id.in_(item_ids))
        .order_by(prelabels.c.computed_at)
    )
    return {r["item_id"]: (r["probs"], r["model_version"]) for r in rows}  # newest wins
