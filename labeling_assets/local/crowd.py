"""Submit a simulated crowd's annotations to a real Label Studio (plan from ``core.labelstudio.crowd``).

Used by ``labeling-assets simulate-crowd``, the demo, the integration tests and the benchmarks.
:func:`simulate_crowd` plays a single-label crowd, :func:`simulate_set_crowd` a multi-label one.
"""

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from labeling_assets.core.fields.crowd import field_answers
from labeling_assets.core.fields.spec import FieldSpec, field_result
from labeling_assets.core.labelstudio.crowd import (
    LabelerSpec,
    PlannedAnnotation,
    PlannedSetAnnotation,
    SetLabelerSpec,
    plan_crowd,
    plan_set_crowd,
)
from labeling_assets.resources.labelstudio import LabelStudioClient

Label = str | list[str]  # a class name, or a multi-label set (sorted; [] = "None of these")
T = TypeVar("T")


@dataclass
class CrowdResult:
    """What was submitted: ``annotations`` rows are (ls_annotation_id, ls_task_id, item_id, username, label)."""

    user_ids: dict[str, int]
    annotations: list[tuple[int, int, str, str, Label]] = field(default_factory=list)
    skipped_items: int = 0  # items of ``truth`` that have no task in the project

    def per_labeler(self) -> dict[str, int]:
        counts = {name: 0 for name in self.user_ids}
        for _, _, _, name, _ in self.annotations:
            counts[name] += 1
        return counts


def simulate_crowd(
    client: LabelStudioClient,
    project_id: int,
    labelers: Sequence[LabelerSpec] | Sequence[SetLabelerSpec],
    *,
    truth: Mapping[str, Any],
    classes: Sequence[str],
    overlap: int = 3,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 4,
    plan: Callable[..., Any] = plan_crowd,
    fields: Sequence[FieldSpec] = (),
) -> CrowdResult:
    """Create the labelers' users (idempotent) and submit annotations as them through the API.

    Args:
        client: a client authenticated as an admin (it posts with ``completed_by`` = the labeler).
        project_id: the Label Studio project.
        labelers: the crowd; usernames are the spec names.
        truth: item_id -> true class for the items to annotate (items without a task are skipped); a true set
            of classes for a multi-label project.
        classes: the project's class list.
        overlap: labelers per task; annotations already in Label Studio by these users count toward it,
            so running twice tops up instead of duplicating.
        seed: makes the answers and lead times reproducible.
        progress: called as ``progress(done, total)`` every 100 annotations.
        workers: annotations posted concurrently (the plan, and so every label, does not depend on it).
        plan: who answers what: :func:`.plan_crowd` (one class each), or :func:`.plan_set_crowd` for a
            multi-label project (each labeler ticks a set of classes, with per-class misses and false alarms;
            an empty answer is posted as the "None of these" choice, and rows of the result carry the set as a
            sorted list). :func:`simulate_set_crowd` is this function with that plan.
        fields: the project's extra answer fields (single-label): each answer also answers them
            (``core/fields/crowd.py``: truth by construction, and a self-confidence rating by the labeler's style).
    """
    user_ids, task_of, wanted, done = _prepare(client, project_id, [a.name for a in labelers], truth)
    planned = plan(wanted, labelers, classes, overlap=overlap, seed=seed, already_done=done)
    result = CrowdResult(user_ids=user_ids, skipped_items=len(truth) - len(wanted))
    specs = {spec.name: spec for spec in labelers if isinstance(spec, LabelerSpec)}
    extras = [
        field_result(field_answers(specs[a.labeler], a.item_id, a.label, wanted[str(a.item_id)], fields, seed=seed),
                     "image")
        if fields and isinstance(a, PlannedAnnotation) else []
        for a in planned.annotations
    ]  # fmt: skip
    _submit(client, planned.annotations, task_of, result, progress, workers, extras)
    return result


simulate_set_crowd = functools.partial(simulate_crowd, plan=plan_set_crowd)  # a multi-label project's crowd


def _prepare(
    client: LabelStudioClient, project_id: int, usernames: list[str], truth: Mapping[str, T]
) -> tuple[dict[str, int], dict[str, int], dict[str, T], dict[str, set[str]]]:
    """Users, task ids, the items of ``truth`` that have a task, and who already labeled each of them."""
    user_ids = client.ensure_users(usernames)
    name_of = {str(uid): name for name, uid in user_ids.items()}
    task_of = client.task_ids_by_item(project_id)
    wanted = {item: label for item, label in truth.items() if item in task_of}
    done: dict[str, set[str]] = {}
    for ann in client.export_annotations(project_id):
        if ann.item_id in wanted and ann.labeler_id in name_of:
            done.setdefault(ann.item_id, set()).add(name_of[ann.labeler_id])
    return user_ids, task_of, wanted, done


def _submit(
    client: LabelStudioClient,
    planned: Sequence[PlannedAnnotation] | Sequence[PlannedSetAnnotation],
    task_of: Mapping[str, int],
    result: CrowdResult,
    progress: Callable[[int, int], None] | None,
    workers: int,
    extras: Sequence[list[dict[str, Any]]] = (),
) -> None:
    local = threading.local()
    users = result.user_ids

    def submit(n: int, one: PlannedAnnotation | PlannedSetAnnotation) -> tuple[int, int, str, str, Label]:
        if not hasattr(local, "client"):
            local.client = client.clone()
        item_id = str(one.item_id)
        label: Label = one.label if isinstance(one, PlannedAnnotation) else list(one.labels)
        ann_id = local.client.create_annotation(
            task_of[item_id], label, completed_by=users[one.labeler], lead_time_s=one.lead_time_s,
            extra=extras[n] if extras else (),
        )
        return (ann_id, task_of[item_id], item_id, one.labeler, label)

    total = len(planned)
    # Community has no bulk annotation endpoint: one POST each, a few in flight (the server is the bottleneck).
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for n, row in enumerate(pool.map(submit, range(len(planned)), planned), start=1):  # map keeps the order
            result.annotations.append(row)
            if progress and (n % 100 == 0 or n == total):
                progress(n, total)
