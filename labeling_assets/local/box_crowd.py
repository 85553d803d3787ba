"""Submit a simulated box crowd's answers to a real Label Studio (``labeling-assets demo --task boxes``, tests).

The plan is :func:`labeling_assets.core.tasks.boxes.crowd.plan_box_crowd`; each answer is posted as its labeler
(``completed_by``) in the form the labeling UI sends: ``rectanglelabels`` regions in percent of the image's size
(:func:`.labelstudio.box_result`), or the "No object" choice for an answer without boxes.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from labeling_assets.core.tasks.boxes.crowd import BoxCrowdMember, PlannedBoxes, plan_box_crowd
from labeling_assets.core.tasks.boxes.labelstudio import box_result
from labeling_assets.local.crowd_posts import CrowdPosts, answered, post_answers
from labeling_assets.resources.labelstudio import LabelStudioClient

BoxCrowdResult = CrowdPosts[PlannedBoxes]


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
    width, height = canvas
    post_answers(client, plan, result, task_of, lambda one: box_result(one.boxes, width, height),
                 progress=progress, workers=workers)  # fmt: skip
    return result
