"""Review requests in the label store: one open request per item and source, and the queue's raises.

``consensus_labels`` and ``label_issues`` record requests through :func:`sync_review_requests` (the
rules of who needs one are in ``core/consensus/review_routing.py``); the queue stage reads the open ones
with their task and latest consensus, and records the overlap raises it decides on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from labeling_assets.core.consensus.review_routing import (
    OVERLAP_RAISED,
    OpenRequest,
    OverlapRaise,
    ReviewRequest,
)
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    latest_consensus_query,
    review_actions_table,
    review_requests_table,
    tasks_table,
    utcnow,
)


@dataclass(frozen=True)
class ReviewSync:
    """What :func:`sync_review_requests` did."""

    requested: dict[str, int]  # action -> new requests
    already_open: int  # wanted requests skipped: the item already had an open one from this source
    resolved: int  # open requests closed


def open_request_items(store: LabelStore, source: str) -> set[str]:
    """Items with an open review request from ``source``."""
    rr = review_requests_table
    rows = store.fetch(sa.select(rr.c.item_id).where(rr.c.source == source, rr.c.resolved_at.is_(None)))
    return {r["item_id"] for r in rows}


def sync_review_requests(
    store: LabelStore, source: str, wanted: Sequence[ReviewRequest], settled: Iterable[str]
) -> ReviewSync:
    """Record ``wanted`` requests, at most one open per item and source (re-runs add no duplicates),
    and resolve the open requests from ``source`` of the ``settled`` items, in one transaction."""
    rr = review_requests_table
    open_items = open_request_items(store, source)
    now = utcnow()
    requested: dict[str, int] = {}
    rows = []
    for request in wanted:
        if request.item_id in open_items:
            continue
        requested[request.action] = requested.get(request.action, 0) + 1
        rows.append(
            {
                "item_id": request.item_id,
                "source": source,
                "action": request.action,
                "reason": request.reason,
                "requested_at": now,
            }
        )
    to_close = sorted(open_items.intersection(settled))
    resolved = 0
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(rr.insert(), list(part))
        for ids in chunked(to_close):
            resolved += int(
                conn.execute(
                    rr.update()
                    .where(rr.c.source == source, rr.c.resolved_at.is_(None), rr.c.item_id.in_(list(ids)))
                    .values(resolved_at=now)
                ).rowcount
                or 0
            )
    already_open = len(open_items.intersection(r.item_id for r in wanted))
    return ReviewSync(requested, already_open, resolved)




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
