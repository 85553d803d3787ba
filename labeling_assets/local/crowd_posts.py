"""What the demos' simulated crowds share when they post to a real Label Studio: which items each user has
answered already, and the posting itself (one POST per answer as its labeler, a few in flight), with the record of
what was posted. ``box_crowd`` and ``text_crowd`` plan the answers and say how one becomes a Label Studio result."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from labeling_assets.resources.labelstudio import LabelStudioClient


class Planned(Protocol):
    """One planned answer: who gives it, to which item, after how long."""

    @property
    def labeler(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def lead_time_s(self) -> float: ...


P = TypeVar("P", bound=Planned)


@dataclass
class CrowdPosts(Generic[P]):
    """What was posted: ``posted`` (Label Studio annotation id, the planned answer) in the plan's order."""

    user_ids: dict[str, int]
    posted: list[tuple[int, P]] = field(default_factory=list)
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


def post_answers(
    client: LabelStudioClient, plan: Sequence[P], result: CrowdPosts[P], task_of: Mapping[str, int],
    result_of: Callable[[P], list[dict[str, Any]]], *, progress: Callable[[int, int], None] | None, workers: int,
) -> None:  # fmt: skip
    """Post each planned answer as its labeler (``completed_by``) to its item's task, ``result_of`` giving the Label
    Studio result; append what was posted to ``result``. Community has no bulk annotation endpoint: one POST each, a
    few in flight (the server is the bottleneck), each thread with its own client."""
    local = threading.local()

    def post(one: P) -> tuple[int, P]:
        if not hasattr(local, "client"):
            local.client = client.clone()
        body = {"result": result_of(one), "completed_by": result.user_ids[one.labeler],
                "lead_time": round(one.lead_time_s, 3)}  # fmt: skip
        created = local.client.request("POST", f"/api/tasks/{task_of[one.item_id]}/annotations/", json=body)
        return int(created["id"]), one

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for n, row in enumerate(pool.map(post, plan), start=1):
            result.posted.append(row)
            if progress and (n % 100 == 0 or n == len(plan)):
                progress(n, len(plan))
