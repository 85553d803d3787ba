"""Big Label Studio projects fast, for benchmarks and tests: tasks imported with their annotations attached.

Posting 10^5 annotations one request each takes hours; importing tasks that carry their annotations
(``completed_by`` = simulated users, answers from the seeded crowd plan) takes one request per few thousand
tasks. The label store gets the matching items and tasks, so a sync of the project maps every annotation.
"""

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.labelstudio.config import choice_result
from labeling_assets.core.labelstudio.crowd import PlannedAnnotation, default_crowd, plan_crowd
from labeling_assets.core.labelstudio.tasks import QueuedItem, task_payload
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks
from labeling_assets.core.store.schema import LabelStore, chunked, items_table, utcnow
from labeling_assets.resources.labelstudio import LabelStudioClient

CLASSES = [str(d) for d in range(10)]
IMPORT_BATCH = 2000  # tasks per import request


@dataclass(frozen=True)
class BigProject:
    project_id: int
    n_tasks: int
    n_annotations: int
    users: dict[str, int]  # username -> Label Studio user id
    seconds: float


def build_project(
    client: LabelStudioClient,
    store: LabelStore,
    n_annotations: int,
    *,
    overlap: int = 3,
    title: str | None = None,
    n_labelers: int = 5,
    seed: int = 0,
) -> BigProject:
    """A project of ``n_annotations`` annotations on ``ceil(n / overlap)`` tasks, with the store's items and tasks."""
    started = time.perf_counter()
    n_tasks = -(-n_annotations // overlap)
    crowd = default_crowd(max(overlap, n_labelers), prefix="bench")
    users = client.ensure_users([a.name for a in crowd])
    title = title or f"big-project-{int(time.time() * 1000)}"
    project_id = client.ensure_project(title=title, classes=CLASSES, overlap=overlap)
    truth = {hashlib.sha256(f"{title}-{i}".encode()).hexdigest(): CLASSES[i % 10] for i in range(n_tasks)}
    plan = plan_crowd(truth, crowd, CLASSES, overlap=overlap, seed=seed).annotations[:n_annotations]
    by_item: dict[str, list[PlannedAnnotation]] = {}
    for planned in plan:
        by_item.setdefault(str(planned.item_id), []).append(planned)
    now = utcnow()
    with store.begin() as conn:
        for chunk in chunked(list(truth), 5000):
            conn.execute(
                items_table.insert(),
                [{"item_id": i, "uri": f"/bench/{i}.png", "source_path": f"{i}.png", "n_bytes": 1,
                  "ingested_at": now, "status": "active"} for i in chunk],  # fmt: skip
            )
    queue = [QueuedItem(item_id=i, is_gold=False, position=n, priority=1.0, probs=None, model_version=None)
             for n, i in enumerate(truth)]  # fmt: skip
    reserve_tasks(store, project_id, queue, overlap=overlap)
    payloads: list[dict[str, Any]] = []
    for item_id in truth:
        task = task_payload(item_id, f"/bench/{item_id}.png")
        task["annotations"] = [
            {"result": choice_result(p.label), "completed_by": users[p.labeler], "lead_time": round(p.lead_time_s, 3)}
            for p in by_item.get(item_id, [])
        ]
        payloads.append(task)
    for start in range(0, len(payloads), IMPORT_BATCH):
        client.import_tasks(project_id, payloads[start : start + IMPORT_BATCH])
    link_tasks(store, project_id, client.task_ids_by_item(project_id))
    return BigProject(project_id, n_tasks, len(plan), users, time.perf_counter() - started)
