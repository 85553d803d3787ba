"""Label Studio webhooks: what an event says was touched, the shared secret, and an idempotent registration plan.

Pure (no HTTP, no store). Label Studio 1.23.2 posts ``{"action": ..., <key>: ..., "project": {...}}`` with the
webhook's own headers (``webhooks/models.py``, ``webhooks/utils.py`` there):
- ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED``: ``annotation`` (its ``task`` id) and ``task`` (the task);
- ``ANNOTATIONS_CREATED``: ``annotation`` is a list, each with its ``task``;
- ``ANNOTATIONS_DELETED``: ``annotations``, ids only (the task is resolved through the store);
- ``TASKS_DELETED``: ``tasks``, ids only. ``TASKS_CREATED`` is not asked for: our own queue creates the tasks,
  with no annotation to sync.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labeling_assets.core.store.webhook_inbox import Touched

SECRET_HEADER = "X-Labeling-Assets-Secret"
ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "TASKS_DELETED")
MAX_TOUCHED = 10_000  # ids one event may name (Label Studio batches deletions; more is not an event of ours)


class MalformedEvent(ValueError):
    """A body that is not a Label Studio webhook event this receiver understands (the message: one line)."""


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (no timing oracle on the secret); an empty expected secret matches nothing."""
    return bool(expected) and given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _id(value: Any, what: str) -> int:
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{what} is not an id: {str(value)[:80]}")
    return value


def _items(value: Any, what: str) -> Sequence[Any]:
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_TOUCHED:
        raise MalformedEvent(f"{what}: {len(items)} entries, more than {MAX_TOUCHED}")
    return items


def touched_by(event: Any) -> list[Touched]:
    """The tasks (or deleted annotations) an event touched; [] for an action that touches no annotation.

    Raises:
        MalformedEvent: not an object with an ``action``, or an action of ours whose ids cannot be read.
    """
    if not isinstance(event, Mapping) or not isinstance(event.get("action"), str):
        raise MalformedEvent("not a JSON object with an 'action'")
    action = str(event["action"])[:64]
    project = event.get("project")
    project_id = _id(project, "project") if project is not None else None
    if action in ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"):
        if "annotation" not in event:
            raise MalformedEvent(f"{action} without 'annotation'")
        tasks = {_id(a.get("task") if isinstance(a, Mapping) else None, "annotation.task")
                 for a in _items(event["annotation"], action)}  # fmt: skip
        return [Touched(action, project_id, ls_task_id=t) for t in sorted(tasks)]
    if action == "ANNOTATIONS_DELETED":
        ids = {_id(a, "annotations[].id") for a in _items(event.get("annotations"), action)}
        return [Touched(action, project_id, ls_annotation_id=a) for a in sorted(ids)]
    if action == "TASKS_DELETED":
        ids = {_id(t, "tasks[].id") for t in _items(event.get("tasks"), action)}
        return [Touched(action, project_id, ls_task_id=t) for t in sorted(ids)]
    return []


@dataclass(frozen=True)
class WebhookPlan:
    """What registration does: create one, update one (``update_id``), or nothing; and the duplicates to delete."""

    create: bool
    update_id: int | None
    keep_id: int | None
    delete_ids: tuple[int, ...]


def desired_webhook(project_id: int, url: str, secret: str) -> dict[str, Any]:
    """The webhook's fields as Label Studio's ``/api/webhooks/`` takes them."""
    return {
        "project": project_id, "url": url, "send_payload": True, "send_for_all_actions": False,
        "headers": {SECRET_HEADER: secret}, "is_active": True, "actions": list(ACTIONS),
    }  # fmt: skip


def plan_webhook(existing: Sequence[Mapping[str, Any]], desired: Mapping[str, Any]) -> WebhookPlan:
    """Idempotent registration: the project's webhooks to our URL are one, kept as is when it matches, updated
    when it does not (a rotated secret, new actions); extra ones (a race, an old rerun) are deleted."""
    ours = sorted(
        (w for w in existing if w.get("url") == desired["url"] and w.get("project") == desired["project"]),
        key=lambda w: int(w["id"]),
    )
    if not ours:
        return WebhookPlan(True, None, None, ())
    first, extra = ours[0], tuple(int(w["id"]) for w in ours[1:])
    same = all(
        (sorted(first.get(k) or []) == sorted(v)) if k == "actions" else first.get(k) == v
        for k, v in desired.items()
    )
    return WebhookPlan(False, None if same else int(first["id"]), int(first["id"]), extra)
