"""The store read behind the completion rate per labeler (rules: ``core/consensus/completion.py``)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.completion import Completion, completion_by_labeler
from labeling_assets.core.store.schema import LabelStore, current_annotations_query, items_table, tasks_table


def labeler_completion(store: LabelStore) -> dict[str, Completion]:
    """labeler_id -> tasks given and answered, over every labeling project the store links tasks in."""
    t = tasks_table
    tasks = pd.DataFrame(
        store.fetch(
            sa.select(t.c.ls_project_id, t.c.ls_task_id, t.c.required_annotations)
            .join(items_table, items_table.c.item_id == t.c.item_id)
            .where(t.c.ls_task_id.isnot(None), items_table.c.status == "active")
        ),
        columns=["ls_project_id", "ls_task_id", "required_annotations"],
    )
    current = current_annotations_query().subquery()
    answers = pd.DataFrame(
        store.fetch(sa.select(current.c.ls_task_id, current.c.labeler_id).where(current.c.ls_task_id.isnot(None))),
        columns=["ls_task_id", "labeler_id"],
    )
    return completion_by_labeler(tasks, answers)
