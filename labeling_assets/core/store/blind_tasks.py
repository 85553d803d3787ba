"""Blind mode in the label store: what each item's labelers' projects hold, and sending an item to more labelers.

Rules are in ``core/labelstudio/blind.py``. Tasks stay keyed by (project, item), one row per labeler project that
holds the item; a top-up is a new reserved task row in the receiving labeler's project (pushed by the queue like any
reserved task) plus its audit row in ``requeue_actions`` (action ``overlap_raised``: the item's overlap, the number of
projects holding it, went from ``overlap_from`` to ``overlap_to``), in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa

from labeling_assets.core.consensus.adjudication import Interval, exclude_paused
from labeling_assets.core.consensus.retraction import OVERLAP_RAISED_FOR_LOST_VOTES
from labeling_assets.core.consensus.review_routing import OpenRequest
from labeling_assets.core.labelstudio.blind import BlindItem, BlindTopUp
from labeling_assets.core.store.as_of import utc
from labeling_assets.core.store.derived_schema import requeue_actions_table
from labeling_assets.core.store.queries import StoreVotes
from labeling_assets.core.store.reviews import open_requests_with
from labeling_assets.core.store.schema import (
    LabelStore,
    current_annotations_query,
    items_table,
    tasks_table,
    utcnow,
)


def blind_items(
    store: LabelStore,
    projects: Mapping[str, int],
    loaded: StoreVotes,
    pauses: Mapping[str, Sequence[Interval]],
    *,
    overlap: int,
    wants: Mapping[str, int] | None = None,
    remote_task_ids: Mapping[int, Collection[int]] | None = None,
    open_since: dt.datetime | None = None,
) -> list[BlindItem]:
    """Every active item held by at least one of ``projects`` (labeler name -> project id), with its holders, who
    answered, and its live votes (valid, not given while paused). ``wants``: item -> answers wanted above
    ``overlap`` (an open review request that asks for one more labeler). ``remote_task_ids``: project id -> the
    task ids Label Studio holds now; a linked task missing there was deleted (None: not checked). ``open_since``: a
    holder whose task was pushed before this time and holds no answer is ``stale`` (None: never)."""
    owner = {pid: name for name, pid in projects.items()}
    t = tasks_table
    rows = store.fetch(
        sa.select(t.c.item_id, t.c.ls_project_id, t.c.ls_task_id, t.c.pushed_at)
        .join(items_table, items_table.c.item_id == t.c.item_id)
        .where(t.c.ls_project_id.in_(list(owner)), items_table.c.status == "active")
    )
    current = current_annotations_query().subquery()
    answered_tasks = {int(r["ls_task_id"]) for r in store.fetch(sa.select(current.c.ls_task_id).distinct())
                      if r["ls_task_id"] is not None}  # fmt: skip
    holders: dict[str, list[str]] = {}
    answered: dict[str, list[str]] = {}
    gone: dict[str, list[str]] = {}
    pushed_before: dict[str, list[str]] = {}
    for r in rows:
        name = owner[int(r["ls_project_id"])]
        holders.setdefault(r["item_id"], []).append(name)
        remote = (remote_task_ids or {}).get(int(r["ls_project_id"]))
        if remote is not None and r["ls_task_id"] is not None and int(r["ls_task_id"]) not in remote:
            gone.setdefault(r["item_id"], []).append(name)
        if r["ls_task_id"] is not None and int(r["ls_task_id"]) in answered_tasks:
            answered.setdefault(r["item_id"], []).append(name)
        elif open_since is not None and r["pushed_at"] is not None and utc(r["pushed_at"]) < open_since:
            pushed_before.setdefault(r["item_id"], []).append(name)
    kept, _ = exclude_paused(loaded.votes.frame, pauses)
    live = kept.groupby("item_id")["labeler_id"].nunique().to_dict() if not kept.empty else {}
    return [
        BlindItem(
            item_id,
            tuple(sorted(names)),
            tuple(sorted(answered.get(item_id, []))),
            int(live.get(item_id, 0)),
            max(overlap, int((wants or {}).get(item_id, 0))),
            tuple(sorted(gone.get(item_id, []))),
            tuple(sorted(pushed_before.get(item_id, []))),
        )  # fmt: skip
        for item_id, names in sorted(holders.items())
    ]


def record_blind_top_up(store: LabelStore, steps: Sequence[BlindTopUp], projects: Mapping[str, int]) -> int:
    """Reserve each step's task in the receiving labeler's project and audit it, in one transaction; steps whose
    task already exists (a concurrent run) are skipped. Returns how many were recorded."""
    now = utcnow()
    recorded = 0
    with store.begin() as conn:
        for step in steps:
            project_id = projects[step.labeler]
            exists = conn.execute(
                sa.select(tasks_table.c.id).where(
                    tasks_table.c.ls_project_id == project_id, tasks_table.c.item_id == step.item_id
                )
            ).first()
            if exists is not None:
                continue
            gold = conn.execute(
                sa.select(items_table.c.gold_label.isnot(None)).where(items_table.c.item_id == step.item_id)
            ).scalar()
            conn.execute(tasks_table.insert().values(item_id=step.item_id, ls_project_id=project_id,
                                                     required_annotations=1, is_gold=bool(gold)))  # fmt: skip
            conn.execute(requeue_actions_table.insert().values(
                ls_project_id=project_id, item_id=step.item_id, action=OVERLAP_RAISED_FOR_LOST_VOTES,
                old_ls_task_id=None, overlap_from=step.holders_from, overlap_to=step.holders_to,
                reason=f"blind: sent to {step.labeler}: {step.reason}", acted_at=now,
            ))  # fmt: skip
            recorded += 1
    return recorded


def blind_open_requests(store: LabelStore, project_ids: Collection[int]) -> list[OpenRequest]:
    """Open review requests in blind mode: the item's "task" is its set of labeler tasks (``required_annotations`` =
    how many projects hold it, ``ls_task_id`` = the lowest of their task ids), so the shared mode's rule
    (``plan_overlap_raises``) decides when one more labeler is due and when an expert is."""
    t = tasks_table
    held = (
        sa.select(
            t.c.item_id,
            sa.func.min(t.c.ls_task_id).label("ls_task_id"),
            sa.func.count().label("required_annotations"),
        )
        .where(t.c.ls_project_id.in_(list(project_ids)))
        .group_by(t.c.item_id)
        .subquery()
    )
    return open_requests_with(store, held)
