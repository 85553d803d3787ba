"""Completion rate per labeler: tasks given vs answered (core/consensus/completion.py says what "given" means)."""

import pandas as pd

from labeling_assets.core.consensus.completion import Completion, completion_by_labeler


def _tasks(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ls_project_id", "ls_task_id", "required_annotations"])


def _answers(rows: list[tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ls_task_id", "labeler_id"])


def test_blind_mode_a_labeler_is_given_every_task_of_their_own_project() -> None:
    # Project 1 is ann's (4 tasks, overlap 1), project 2 is bo's (2 tasks).
    tasks = _tasks([(1, 11, 1), (1, 12, 1), (1, 13, 1), (1, 14, 1), (2, 21, 1), (2, 22, 1)])
    answers = _answers([(11, "ann"), (12, "ann"), (12, "ann"), (21, "bo"), (22, "bo")])  # a second annotation counts once
    found = completion_by_labeler(tasks, answers)
    assert found == {"ann": Completion(done=2, given=4), "bo": Completion(done=2, given=2)}
    assert found["ann"].rate == 0.5 and found["bo"].rate == 1.0


def test_shared_mode_counts_what_they_answered_and_what_is_still_on_offer_to_them() -> None:
    # Overlap 2: task 1 filled by ann and bo, task 2 by bo and cy (full: never ann's), task 3 half filled by bo,
    # task 4 empty. Ann could still take 3 and 4; bo only 4; cy 3 and 4.
    tasks = _tasks([(5, 1, 2), (5, 2, 2), (5, 3, 2), (5, 4, 2)])
    answers = _answers([(1, "ann"), (1, "bo"), (2, "bo"), (2, "cy"), (3, "bo")])
    found = completion_by_labeler(tasks, answers)
    assert found == {"ann": Completion(1, 3), "bo": Completion(3, 4), "cy": Completion(1, 3)}


def test_only_live_tasks_and_the_projects_a_labeler_works_in_count() -> None:
    # Task 9 is gone (an inactive item or a deleted task): its answer counts nowhere. Project 6 is someone else's.
    tasks = _tasks([(5, 1, 1), (5, 2, 1), (6, 3, 1)])
    answers = _answers([(1, "ann"), (9, "ann"), (3, "dee")])
    assert completion_by_labeler(tasks, answers) == {"ann": Completion(1, 2), "dee": Completion(1, 1)}
    assert completion_by_labeler(tasks, _answers([])) == {}
    assert Completion(0, 0).rate is None
