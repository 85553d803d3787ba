"""Completion rate per labeler: of the tasks a labeler was given, the share they answered.

What "given" means follows how Label Studio hands out work (one rule, both modes):

- Blind mode: each labeler has a project of their own, every task in it with overlap 1. Given = every task of
  their project; done = those they answered. A task a top-up also sent to another labeler (it waited too long)
  stays theirs and counts as not done until they answer.
- Shared project: the label stream offers a task to every labeler of the project until it holds its overlap
  (``required_annotations``). Given = the tasks they answered plus those still short of their overlap that they
  have not answered (still on offer to them); a task other labelers filled was never theirs to do.

A labeler's projects are those they answered in; so "given" never counts a project they have not started, and a
labeler with no answer has no rate (None), not 0. Only live tasks count (pushed to Label Studio, item active),
and every current answer counts, whatever consensus later makes of it (a paused labeler's answer still filled
the task in Label Studio). Pure: the store read is ``core/store/completion.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Completion:
    done: int  # tasks they answered
    given: int  # tasks they were given (see the module docstring)

    @property
    def rate(self) -> float | None:
        return self.done / self.given if self.given else None


def completion_by_labeler(tasks: pd.DataFrame, answers: pd.DataFrame) -> dict[str, Completion]:
    """labeler_id -> :class:`Completion`.

    Args:
        tasks: the live tasks, columns ``ls_task_id, required_annotations`` (one row per task; a project id column
            may come along, the task id is unique across projects in one Label Studio).
        answers: the current answers, columns ``ls_task_id, labeler_id`` (several rows of one labeler on one task
            count once).
    """
    if tasks.empty or answers.empty:
        return {}
    tasks = tasks.assign(ls_project_id=tasks.get("ls_project_id", 0))
    live = answers[answers["ls_task_id"].isin(set(tasks["ls_task_id"]))][["ls_task_id", "labeler_id"]]
    live = live.assign(labeler_id=live["labeler_id"].astype(str)).drop_duplicates()
    filled = live.groupby("ls_task_id").size()
    by_task = tasks.drop_duplicates("ls_task_id").set_index("ls_task_id")
    is_open = filled.reindex(by_task.index, fill_value=0) < by_task["required_annotations"]  # still on offer
    open_per_project = is_open.groupby(by_task["ls_project_id"]).sum()
    # Vectorized per (labeler, project): answered, and answered among the open ones (not on offer to them again).
    mine = live.assign(project=live["ls_task_id"].map(by_task["ls_project_id"]),
                       open=live["ls_task_id"].map(is_open).astype(bool))  # fmt: skip
    per = mine.groupby(["labeler_id", "project"]).agg(done=("ls_task_id", "size"), answered_open=("open", "sum"))
    open_in_project = open_per_project.reindex(per.index.get_level_values("project")).to_numpy()
    per["offered"] = open_in_project - per["answered_open"].to_numpy()
    totals = per.groupby(level="labeler_id")[["done", "offered"]].sum()
    done, offered = totals["done"].to_numpy(dtype=int), totals["offered"].to_numpy(dtype=int)
    return {str(k): Completion(int(d), int(d + o)) for k, d, o in zip(totals.index, done, offered, strict=True)}
