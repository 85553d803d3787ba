"""Review requests in the label store: one open request per item and source, and the queue's raises.

Also what the queue does when derived data follows its sources: items re-queued after losing live votes
(``requeue_actions``) and superseded items whose task had to be closed (``item_conflicts``).

``consensus_labels`` and ``label_issues`` record requests through :func:`sync_review_requests` (the
rules of who needs one are in ``core/consensus/review_routing.py``); the queue stage reads the open ones
with their task and latest consensus, and records the overlap raises it decides on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.consensus.adjudication import Interval, exclude_paused
from labeling_assets.core.consensus.retraction import (
    PENDING,
    RESERVATION_WITHDRAWN,
    Requeue,
    RequeuePlan,
    TaskState,
    newest_descendant,
)
from labeling_assets.core.consensus.review_routing import (
    OVERLAP_RAISED,
    OpenRequest,
    OverlapRaise,
    ReviewRequest,
)
from labeling_assets.core.store.derived_schema import item_conflicts_table, requeue_actions_table
from labeling_assets.core.store.human_loop import pause_intervals
from labeling_assets.core.store.queries import SUPERSEDED, StoreVotes
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    items_table,
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
    t = tasks_table
    tasks = sa.select(t.c.item_id, t.c.ls_task_id, t.c.required_annotations).where(t.c.ls_project_id == project_id)
    return open_requests_with(store, tasks.subquery())


def open_requests_with(store: LabelStore, tasks: sa.Subquery) -> list[OpenRequest]:
    """Every open review request, with its item's row of ``tasks`` (columns ``item_id``, ``ls_task_id``,
    ``required_annotations``; at most one row an item) and latest consensus, if any."""
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
            tasks.c.ls_task_id,
            tasks.c.required_annotations,
            latest.c.n_annotators,
        )
        .select_from(rr)
        .outerjoin(tasks, tasks.c.item_id == rr.c.item_id)
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
            ls_task_id=_int_or_none(r["ls_task_id"]),
            required_annotations=_int_or_none(r["required_annotations"]),
            n_annotators=_int_or_none(r["n_annotators"]),
        )
        for r in store.fetch(stmt)
    ]


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def _set_task_if(conn: Connection, project_id: int, item_id: str, expected: Any, **values: Any) -> bool:
    """Compare-and-set on the item's task in the project: ``values`` are written only while ``expected`` (a
    condition on the task row) still holds; whether they were (a concurrent run may have moved the task on)."""
    t = tasks_table
    where = (t.c.ls_project_id == project_id, t.c.item_id == item_id, expected)
    return bool(conn.execute(t.update().where(*where).values(**values)).rowcount)


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
            expected = tasks_table.c.required_annotations == step.overlap_from
            if not _set_task_if(conn, project_id, step.item_id, expected, required_annotations=step.overlap_to):
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


# --- derived data follows its sources: re-queue and source conflicts --------------------------------


def requeue_task_states(
    store: LabelStore,
    project_id: int,
    loaded: StoreVotes,
    remote_overlaps: Mapping[int, int],
    pauses: Mapping[str, Sequence[Interval]] | None = None,
) -> list[TaskState]:
    """Every active item with a linked task in ``project_id``, with its live votes and Label Studio state.

    ``remote_overlaps``: Label Studio task id -> overlap of every task the project holds now. ``pauses``
    (default: the store's pause history): a vote a labeler gave while paused is not live, as in consensus.
    """
    valid = loaded.votes.frame
    kept, _ = exclude_paused(valid, pause_intervals(store) if pauses is None else pauses)
    every = valid.groupby("item_id")["labeler_id"].nunique().to_dict() if not valid.empty else {}
    live = kept.groupby("item_id")["labeler_id"].nunique().to_dict() if not kept.empty else {}
    rows = store.fetch(
        sa.select(tasks_table.c.item_id, tasks_table.c.ls_task_id, tasks_table.c.required_annotations)
        .join(items_table, items_table.c.item_id == tasks_table.c.item_id)
        .where(
            tasks_table.c.ls_project_id == project_id,
            tasks_table.c.ls_task_id.is_not(None),
            items_table.c.status == "active",
        )
    )
    return [
        TaskState(
            item_id=r["item_id"],
            ls_task_id=int(r["ls_task_id"]),
            required=int(r["required_annotations"]),
            live_votes=int(live.get(r["item_id"], 0)),
            held=int(loaded.held.get(r["item_id"], 0)),
            in_label_studio=int(r["ls_task_id"]) in remote_overlaps,
            ls_overlap=remote_overlaps.get(int(r["ls_task_id"])),
            paused_votes=int(every.get(r["item_id"], 0)) - int(live.get(r["item_id"], 0)),
        )
        for r in rows
    ]


def record_requeues(store: LabelStore, project_id: int, plan: RequeuePlan) -> tuple[list[Requeue], list[Requeue]]:
    """Record the plan in one transaction; returns (recreated, raised) as applied.

    A deleted task is unlinked (compare-and-set on its old Label Studio id), so the queue's pending path
    pushes the item again as a new task and links it; a raise is audited once per (item, overlap).
    """
    now = utcnow()
    recreated: list[Requeue] = []
    raised: list[Requeue] = []
    rq = requeue_actions_table
    with store.begin() as conn:
        for step in plan.recreate:
            expected = tasks_table.c.ls_task_id == step.ls_task_id
            if _set_task_if(conn, project_id, step.item_id, expected, ls_task_id=None, pushed_at=None):
                conn.execute(rq.insert().values(_requeue_row(project_id, step, now)))
                recreated.append(step)
        for step in plan.raise_overlap:
            seen = conn.execute(
                sa.select(rq.c.id).where(
                    rq.c.ls_project_id == project_id,
                    rq.c.item_id == step.item_id,
                    rq.c.action == step.action,
                    rq.c.overlap_to == step.overlap_to,
                )
            ).first()
            if seen is None:
                conn.execute(rq.insert().values(_requeue_row(project_id, step, now)))
            raised.append(step)
    return recreated, raised


def _requeue_row(project_id: int, step: Requeue, now: dt.datetime) -> dict[str, object]:
    return {
        "ls_project_id": project_id,
        "item_id": step.item_id,
        "action": step.action,
        "old_ls_task_id": step.ls_task_id,
        "overlap_from": step.overlap_from,
        "overlap_to": step.overlap_to,
        "reason": step.reason,
        "acted_at": now,
    }


@dataclass(frozen=True)
class Conflict:
    """A superseded item whose task Label Studio still has to be told about."""

    conflict_id: int
    old_item_id: str
    new_item_id: str | None
    old_ls_task_id: int


def detect_conflicts(store: LabelStore, project_id: int, held: Mapping[str, int]) -> dict[str, int]:
    """Record a conflict for every superseded item queued in ``project_id`` that has none yet; returns the
    new conflicts by outcome so far (pending = Label Studio still to be told).

    In the same transaction: a reservation never pushed is withdrawn (nothing reached Label Studio), and
    the item now at the source path gets a task reservation (same overlap) unless it already has one, so
    the next push sends it. Votes on the old item stop counting through its status (``load_votes``).
    """
    it, t, c = items_table, tasks_table, item_conflicts_table
    known = sa.select(c.c.old_item_id).where(c.c.ls_project_id == project_id)
    now = utcnow()
    outcomes: dict[str, int] = {}
    with store.begin() as conn:
        found = conn.execute(
            sa.select(t.c.id, t.c.item_id, t.c.ls_task_id, t.c.required_annotations, it.c.source_path)
            .join(it, it.c.item_id == t.c.item_id)
            .where(t.c.ls_project_id == project_id, it.c.status == SUPERSEDED, t.c.item_id.notin_(known))
        ).mappings().all()
        if not found:
            return {}
        replaced_by = {
            str(r.supersedes): str(r.item_id)
            for r in conn.execute(sa.select(it.c.item_id, it.c.supersedes).where(it.c.supersedes.is_not(None)))
        }
        active = {
            str(r.item_id): r.gold_label is not None
            for r in conn.execute(sa.select(it.c.item_id, it.c.gold_label).where(it.c.status == "active"))
        }
        queued = {str(r[0]) for r in conn.execute(sa.select(t.c.item_id).where(t.c.ls_project_id == project_id))}
        for row in found:
            new = newest_descendant(row["item_id"], replaced_by)
            new = new if new in active else None
            if new is not None and new not in queued:
                conn.execute(
                    t.insert().values(
                        item_id=new, ls_project_id=project_id, required_annotations=row["required_annotations"],
                        is_gold=active[new], priority=1.0, model_version=None,
                    )
                )
                queued.add(new)
            outcome = PENDING
            if row["ls_task_id"] is None:  # reserved, never pushed: nothing to close in Label Studio
                conn.execute(t.delete().where(t.c.id == row["id"]))
                outcome = RESERVATION_WITHDRAWN
            conn.execute(
                c.insert().values(
                    ls_project_id=project_id, old_item_id=row["item_id"], new_item_id=new,
                    source_path=row["source_path"], old_ls_task_id=row["ls_task_id"],
                    live_votes=int(held.get(row["item_id"], 0)), outcome=outcome,
                    new_task_reserved=new is not None, detected_at=now,
                    task_marked_at=now if outcome != PENDING else None,
                )
            )
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def conflicts_to_mark(store: LabelStore, project_id: int) -> list[Conflict]:
    """Conflicts whose old task Label Studio has not been told about yet (a crash or outage in between)."""
    c = item_conflicts_table
    rows = store.fetch(
        sa.select(c.c.id, c.c.old_item_id, c.c.new_item_id, c.c.old_ls_task_id)
        .where(c.c.ls_project_id == project_id, c.c.outcome == PENDING, c.c.old_ls_task_id.is_not(None))
        .order_by(c.c.id)
    )
    return [Conflict(int(r["id"]), r["old_item_id"], r["new_item_id"], int(r["old_ls_task_id"])) for r in rows]


def record_conflict_outcome(store: LabelStore, conflict_id: int, outcome: str) -> None:
    """The old task is marked (or was already gone) in Label Studio."""
    c = item_conflicts_table
    with store.begin() as conn:
        conn.execute(c.update().where(c.c.id == conflict_id).values(outcome=outcome, task_marked_at=utcnow()))


def conflict_rows(store: LabelStore) -> list[dict[str, object]]:
    """Every recorded source conflict, newest first (for metadata and the QA report)."""
    c = item_conflicts_table
    return store.fetch(sa.select(c).order_by(c.c.detected_at.desc(), c.c.id.desc()))
