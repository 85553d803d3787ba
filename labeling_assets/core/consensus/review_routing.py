"""Acting on review requests: which low-confidence items get one more annotator in Label Studio.

``consensus_labels`` and ``label_issues`` only record review requests (one open request per item and
source, closed when the item becomes confident). The queue stage acts on them:

- ``more_annotators``: the item's task overlap goes up by one, up to ``max_overlap``, but only once the
  overlap asked so far has been delivered and consensus has seen it (its latest row counts at least
  ``required_annotations`` annotators) and still leaves the request open. So a re-run with nothing new
  raises nothing (idempotent), a request whose extra annotator has not arrived yet waits, and an item
  that stays unsure after that annotator gets one more, round by round, until the cap.
- At the cap, or for ``expert_review`` requests, nothing is raised: they are reported for an expert.

The store is the truth: a raise is recorded (``tasks.required_annotations`` compare-and-set plus a
``review_actions`` row) before Label Studio is told, and :func:`overlap_drift` finds raised tasks whose
Label Studio overlap lags behind (a crash or an outage between the two), so the next run repairs them.
No dagster and no HTTP here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from labeling_assets.core.store.schema import (
    LabelStore,
    latest_consensus_query,
    review_actions_table,
    review_requests_table,
    tasks_table,
    utcnow,
)

MORE_ANNOTATORS = "more_annotators"
EXPERT_REVIEW = "expert_review"
OVERLAP_RAISED = "overlap_raised"


@dataclass(frozen=True)
class OpenRequest:
    """An open review request with what the queue knows about its item."""

    request_id: int
    item_id: str
    source: str
    action: str
    reason: str | None = None
    requested_at: dt.datetime | None = None
    ls_task_id: int | None = None  # None: the item has no linked task in this project
    required_annotations: int | None = None  # the task's overlap as the store records it
    n_annotators: int | None = None  # annotators the item's latest consensus row counted


@dataclass(frozen=True)
class OverlapRaise:
    request_id: int
    item_id: str
    ls_task_id: int
    overlap_from: int
    overlap_to: int


@dataclass
class OverlapPlan:
    raises: list[OverlapRaise] = field(default_factory=list)
    waiting: list[OpenRequest] = field(default_factory=list)  # the overlap already asked is not met yet
    at_cap: list[OpenRequest] = field(default_factory=list)  # want more annotators, task at max_overlap
    no_task: list[OpenRequest] = field(default_factory=list)  # item not queued in this project
    expert: list[OpenRequest] = field(default_factory=list)  # expert_review (and unknown actions)

    @property
    def needs_expert(self) -> list[OpenRequest]:
        """Requests a human expert has to settle: asked for one, or the crowd is at the cap."""
        return self.expert + self.at_cap


def plan_overlap_raises(requests: Sequence[OpenRequest], *, max_overlap: int) -> OverlapPlan:
    """Decide which open requests raise their task's overlap (see the module docstring for the rules).

    An item with several open ``more_annotators`` requests (two sources) is raised once, on behalf of
    its oldest request. Deterministic: the output follows request ids.
    """
    if max_overlap < 1:
        raise ValueError(f"max_overlap must be at least 1, got {max_overlap}")
    plan = OverlapPlan()
    seen_items: set[str] = set()
    for req in sorted(requests, key=lambda r: r.request_id):
        if req.action != MORE_ANNOTATORS:
            plan.expert.append(req)
            continue
        if req.item_id in seen_items:
            continue
        seen_items.add(req.item_id)
        if req.ls_task_id is None or req.required_annotations is None:
            plan.no_task.append(req)
            continue
        delivered = req.n_annotators or 0
        if delivered < req.required_annotations:
            plan.waiting.append(req)
            continue
        # +1 over what was delivered (an item can hold more annotations than its overlap asked for).
        current = max(req.required_annotations, delivered)
        if current >= max_overlap:
            plan.at_cap.append(req)
            continue
        plan.raises.append(
            OverlapRaise(req.request_id, req.item_id, req.ls_task_id, req.required_annotations, current + 1)
        )
    return plan


# --- store side --------------------------------------------------------------------------------


def open_review_requests(store: LabelStore, project_id: int) -> list[OpenRequest]:
    """Every open review request, with its item's task in ``project_id`` and latest consensus, if any."""
    rr = review_requests_table
    latest = latest_consensus_query().subquery()
    stmt = (
        sa.select(
            rr.c.id,
            rr.c.item_id,
            rr.c.source,
            rr.c.action,
            rr.c.reason,
            rr.c.requested_at,
            tasks_table.c.ls_task_id,
            tasks_table.c.required_annotations,
            latest.c.n_annotators,
        )
        .select_from(rr)
        .outerjoin(tasks_table, sa.and_(tasks_table.c.item_id == rr.c.item_id, tasks_table.c.ls_project_id == project_id))
        .outerjoin(latest, latest.c.item_id == rr.c.item_id)
        .where(rr.c.resolved_at.is_(None))
        .order_by(rr.c.id)
    )
    return [
        OpenRequest(
            request_id=int(r["id"]),
            item_id=r["item_id"],
            source=r["source"],
            action=r["action"],
            reason=r["reason"],
            requested_at=r["requested_at"],
            ls_task_id=int(r["ls_task_id"]) if r["ls_task_id"] is not None else None,
            required_annotations=r["required_annotations"],
            n_annotators=r["n_annotators"],
        )
        for r in store.fetch(stmt)
    ]


def record_overlap_raises(
    store: LabelStore, project_id: int, raises: Sequence[OverlapRaise]
) -> list[OverlapRaise]:
    """Record the raises in one transaction; returns those applied.

    Compare-and-set on ``required_annotations``: a raise whose task moved on meanwhile (a concurrent run
    raised it first) is dropped, so two runs never raise the same task twice for one round.
    """
    applied: list[OverlapRaise] = []
    now = utcnow()
    with store.begin() as conn:
        for step in raises:
            changed = conn.execute(
                tasks_table.update()
                .where(
                    tasks_table.c.ls_project_id == project_id,
                    tasks_table.c.item_id == step.item_id,
                    tasks_table.c.required_annotations == step.overlap_from,
                )
                .values(required_annotations=step.overlap_to)
            ).rowcount
            if not changed:
                continue
            conn.execute(
                review_actions_table.insert().values(
                    request_id=step.request_id,
                    item_id=step.item_id,
                    ls_project_id=project_id,
                    ls_task_id=step.ls_task_id,
                    action=OVERLAP_RAISED,
                    overlap_from=step.overlap_from,
                    overlap_to=step.overlap_to,
                    acted_at=now,
                )
            )
            applied.append(step)
    return applied


def raised_task_overlaps(store: LabelStore, project_id: int) -> dict[int, int]:
    """ls_task_id -> required overlap, for the tasks of the project whose overlap the pipeline raised."""
    raised = sa.select(review_actions_table.c.item_id).where(
        review_actions_table.c.ls_project_id == project_id, review_actions_table.c.action == OVERLAP_RAISED
    )
    rows = store.fetch(
        sa.select(tasks_table.c.ls_task_id, tasks_table.c.required_annotations).where(
            tasks_table.c.ls_project_id == project_id,
            tasks_table.c.ls_task_id.isnot(None),
            tasks_table.c.item_id.in_(raised),
        )
    )
    return {int(r["ls_task_id"]): int(r["required_annotations"]) for r in rows}


def overlap_drift(wanted: Mapping[int, int], remote: Mapping[int, int]) -> dict[int, int]:
    """Tasks whose Label Studio overlap is below the recorded one: ls_task_id -> overlap to set.

    Only raises: a task Label Studio holds at a higher overlap (someone raised it by hand) is left alone,
    and a task Label Studio no longer has is skipped.
    """
    return {tid: want for tid, want in sorted(wanted.items()) if tid in remote and remote[tid] < want}
