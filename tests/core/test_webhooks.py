"""Label Studio webhook events and registration, as pure rules (core/labelstudio/webhooks.py)."""

from typing import Any

import pytest

from labeling_assets.core.labelstudio.webhooks import (
    ACTIONS,
    SECRET_HEADER,
    MalformedEvent,
    desired_webhook,
    plan_webhook,
    secret_matches,
    touched_by,
)
from labeling_assets.core.store.webhook_inbox import Touched


def test_a_deletion_names_annotations_only_and_a_task_event_names_tasks() -> None:
    assert touched_by({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 4}, {"id": 4}], "project": {"id": 2}}) == [
        Touched("ANNOTATIONS_DELETED", 2, ls_annotation_id=4)
    ]
    assert touched_by({"action": "TASKS_DELETED", "tasks": [{"id": 9}]}) == [Touched("TASKS_DELETED", None, ls_task_id=9)]


def test_a_body_that_is_not_an_event_is_malformed() -> None:
    bodies: list[Any] = [None, [], {"no": "action"}, {"action": "ANNOTATION_UPDATED", "annotation": {"task": True}}]
    for body in bodies:
        with pytest.raises(MalformedEvent):
            touched_by(body)


def test_the_secret_compares_exactly_and_an_empty_one_matches_nothing() -> None:
    assert secret_matches("abc", "abc") and not secret_matches("abd", "abc") and not secret_matches(None, "abc")
    assert not secret_matches("", "")


def test_registration_creates_once_keeps_a_match_updates_a_change_and_deletes_duplicates() -> None:
    want = desired_webhook(3, "http://r/labelstudio", "s")
    assert plan_webhook([], want).create
    same = {**want, "id": 10, "actions": list(reversed(ACTIONS))}
    assert plan_webhook([same], want) == plan_webhook([same], want)
    kept = plan_webhook([same, {**same, "id": 12}, {**same, "id": 11, "project": 4}], want)
    assert (kept.create, kept.update_id, kept.keep_id, kept.delete_ids) == (False, None, 10, (12,))
    rotated = plan_webhook([{**same, "headers": {SECRET_HEADER: "old"}}], want)
    assert (rotated.create, rotated.update_id) == (False, 10)


def test_the_ids_webhooks_name_are_read_in_runs_of_close_ids() -> None:
    """One data-manager page per run (labeling_assets.resources.labelstudio.tasks_by_id), not a request per task."""
    from labeling_assets.resources.labelstudio import id_ranges

    assert id_ranges([]) == []
    assert id_ranges([7, 3, 4, 5, 5]) == [(3, 7)]  # sorted, distinct, gaps up to 16 joined
    assert id_ranges([1, 17, 34]) == [(1, 17), (34, 34)]  # a gap of 17 starts a new run
    assert id_ranges(list(range(1, 451, 10))) == [(1, 191), (201, 391), (401, 441)]  # a run spans under 200 ids
