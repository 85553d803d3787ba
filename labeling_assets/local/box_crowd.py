"""Submit a simulated box crowd's answers to a real Label Studio (``labeling-assets demo --task boxes``, tests).

The plan is :func:`labeling_assets.core.tasks.boxes.crowd.plan_box_crowd`; each answer is posted as its labeler
(``completed_by``) in the form the labeling UI sends: ``rectanglelabels`` regions in percent of the image's size
(:func:`.labelstudio.box_result`), or the "No object" choice for an answer without boxes.
"""

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from labeling_assets.core.tasks.boxes.crowd import BoxCrowdMember, PlannedBoxes, plan_box_crowd
from labeling_assets.core.tasks.boxes.labelstudio import box_result
from labeling_assets.resources.labelstudio import LabelStudioClient


@dataclass
class BoxCrowdResult:
    """What was posted: ``posted`` (Label Studio annotation id, the plan's answer) in the plan's order."""

    user_ids: dict[str, int]
    posted: list[tuple[int, PlannedBoxes]] = field(default_factory=list)
    skipped_items: int = 0  # items of the truth without a task in the project

    def per_labeler(self) -> dict[str, int]:
        counts = dict.fromkeys(self.user_ids, 0)
        for _, one in self.posted:
            counts[one.labeler] += 1
        return counts


def answered(client: LabelStudioClient, project_id: int) -> dict[str, set[int]]:
    """item_id -> the user ids who have an annotation of its task (one export; tasks without any are left out)."""
    exported = client.request("GET", f"/api/projects/{project_id}/export", params={"exportType": "JSON"}) or []
    out: dict[str, set[int]] = {}
    for task in exported:
        item = (task.get("data") or {}).get("item_id")
        for annotation in task.get("annotations") or []:
            who = annotation.get("completed_by")
            who = who.get("id") if isinstance(who, dict) else who
            if item and who is not None:
                out.setdefault(str(item), set()).add(int(who))
    return out


def simulate_box_crowd(
    client: LabelStudioClient,
    project_id: int,
    crowd: Sequence[BoxCrowdMember],
    *,
    truth: Mapping[str, Sequence[Mapping[str, Any]]],
    classes: Sequence[str],
    canvas: tuple[float, float],
    overlap: int = 3,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 4,
) -> BoxCrowdResult:
    """Create the crowd's users (idempotent) and post their answers to the tasks of ``truth``'s items.

    Args:
        client: a client authenticated as an admin (it posts with ``completed_by`` = the labeler).
        project_id: a project with the boxes label config.
        crowd: the labelers; usernames are their names.
        truth: item_id -> true pixel boxes ``{label, x0, y0, x1, y1}`` (``[]``: an empty scene); items without a
            task are skipped.
        classes: the project's class list.
        canvas: the images' size in pixels (width, height): the percentages Label Studio stores are of it.
        overlap: labelers per task; the crowd's answers already there count, so a second run only tops up.
        seed: makes the answers and lead times reproducible.
        progress: called as ``progress(done, total)`` every 100 answers and at the end.
        workers: answers posted concurrently (the plan does not depend on it).
    """
    user_ids = client.ensure_users([m.name for m in crowd])
    name_of = {uid: name for name, uid in user_ids.items()}
    task_of = client.task_ids_by_item(project_id)
    wanted = {item: boxes for item, boxes in truth.items() if item in task_of}
    done = {item: {name_of[u] for u in users if u in name_of} for item, users in answered(client, project_id).items()}
    plan = plan_box_crowd(wanted, crowd, classes, overlap=overlap, seed=seed, canvas=canvas, already_done=done)
    result = BoxCrowdResult(user_ids=user_ids, skipped_items=len(truth) - len(wanted))
    local = threading.local()
    width, height = canvas

    def post(one: PlannedBoxes) -> tuple[int, PlannedBoxes]:
        if not hasattr(local, "client"):
            local.client = client.clone()
        body = {"result": box_result(one.boxes, width, height), "completed_by": user_ids[one.labeler],
                "lead_time": round(one.lead_time_s, 3)}  # fmt: skip
        created = local.client.request("POST", f"/api/tasks/{task_of[one.item_id]}/annotations/", json=body)
        return int(created["id"]), one

    # Community has no bulk annotation endpoint: one POST each, a few in flight (the server is the bottleneck).
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for n, row in enumerate(pool.map(post, plan), start=1):
            result.posted.append(row)
            if progress and (n % 100 == 0 or n == len(plan)):
                progress(n, len(plan))
    return result
