"""A new champion takes over the labelers' screens as it is promoted (issue 26).

Before the alias moves, model_evaluation pre-labels the items of the open tasks with the new model (it is
loaded already; an open task is a few dozen items, seconds of prediction) and attaches those predictions to the
open tasks, as the queue's refresh does. Without it, labelers saw the previous champion's predictions until a
prelabel run and a queue run after it had started and finished: minutes on a loaded machine, and the 30-minute
long run counted 4% of open tasks carrying the champion's prediction. The prelabel and queue runs that follow a
promotion still run: they pre-label every other item and attach what a task pushed meanwhile lacks.

Pure of Dagster: the model's prediction comes in as a callable, the Label Studio client as a protocol.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labeling_assets.core.labelstudio.client import TaskClient
from labeling_assets.core.labelstudio.queue import QueueOptions, open_tasks, refresh_predictions
from labeling_assets.core.store.datasets import insert_prelabels, prelabeled_by, record_thresholds
from labeling_assets.core.store.labelstudio_sync import item_uris
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.tasks.kind import TaskKind

# uris -> (the model's probs per file: probabilities (n, K), or a trainer kind's outputs as a 1-d object array;
# the indices of the files that failed to decode)
Predict = Callable[[list[str]], tuple[npt.NDArray[Any], list[int]]]


@dataclass(frozen=True)
class HandOver:
    """What the hand-over did: items it pre-labeled, open tasks it saw and predictions it attached."""

    prelabeled: int
    open_tasks: int
    attached: int


def hand_over(
    store: LabelStore,
    client: TaskClient,
    kind: TaskKind,
    options: QueueOptions,
    project_ids: Sequence[int],
    *,
    model_version: str,
    predict: Predict,
    thresholds: Sequence[float] | None = None,
) -> HandOver:
    """Pre-label the open tasks' items with ``model_version`` (those it has not pre-labeled yet) and attach the
    predictions to every open task of ``project_ids`` (the shared project, or each labeler's in blind mode)."""
    open_items: dict[str, None] = {}
    for project_id in project_ids:
        open_items.update({str(r["item_id"]): None for r in open_tasks(store, client, project_id)})
    todo = sorted(set(open_items) - prelabeled_by(store, model_version, list(open_items)))
    uris = item_uris(store, todo)
    todo = [item for item in todo if item in uris]
    written = 0
    if todo:
        probs, failed = predict([uris[item] for item in todo])
        keep = np.ones(len(todo), dtype=bool)
        keep[failed] = False
        written = insert_prelabels(store, [i for i, k in zip(todo, keep, strict=True) if k], probs[keep],
                                   list(options.classes), model_version)  # fmt: skip
    if thresholds is not None:
        record_thresholds(store, model_version, dict(zip(options.classes, thresholds, strict=True)))
    reports = [refresh_predictions(store, client, kind, options, project_id) for project_id in project_ids]
    return HandOver(
        prelabeled=written,
        open_tasks=sum(int(r["open_tasks"]) for r in reports),
        attached=sum(int(r["predictions_refreshed"]) for r in reports),
    )
