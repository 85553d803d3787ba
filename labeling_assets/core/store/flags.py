"""Items a person sends to expert review by hand (``labeling-assets item flag ITEM --reason ...``).

A flag is a review request like those consensus and label issues record (``review_requests``, source ``manual``,
action ``expert_review``): the next ``adjudications`` run queues the item in the Label Studio review project, where
an expert answers it and the answer overrides the crowd. One open flag per item (flagging again adds nothing);
``unflag`` resolves it. The review project shows an item once: an item an expert already answered is refused
(its answer stands), and unflagging an item already pushed there does not take its review task back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from labeling_assets.core.consensus.review_routing import EXPERT_REVIEW, ReviewRequest
from labeling_assets.core.store.human_loop_schema import adjudications_table, review_tasks_table
from labeling_assets.core.store.reviews import open_request_items, sync_review_requests
from labeling_assets.core.store.schema import LabelStore, items_table, source_files_table

MANUAL_SOURCE = "manual"  # review_requests.source of a flag
MIN_PREFIX = 4  # a shorter id prefix names too many items to be what a person means


class UnknownItem(LookupError):
    """What a person named is not one item of the label store."""


class FlagRefused(ValueError):
    """A flag that would do nothing or cannot be acted on (empty reason, inactive or already adjudicated item)."""


@dataclass(frozen=True)
class FlagOutcome:
    item_id: str
    recorded: bool  # False: the item already had an open flag
    review_task: int | None  # the item's task in a review project, when it was pushed there already


def resolve_item(store: LabelStore, name: str) -> str:
    """The item ``name`` means: its id, a unique prefix of it (at least :data:`MIN_PREFIX` characters), the source
    path it was read from (the path's current item; ``~`` expanded, relative to the working folder), or the URI of its
    stored copy.

    Raises:
        UnknownItem: nothing or several items match (one line naming what was asked).
    """
    text = name.strip()
    if not text:
        raise UnknownItem("no item named: give an item id (or a unique prefix), a source path or a URI")
    it, sf = items_table, source_files_table
    paths = {text, str(Path(text).expanduser().resolve())} if "://" not in text else {text}
    exact = store.fetch(sa.select(it.c.item_id).where(it.c.item_id == text))
    if exact:
        return str(exact[0]["item_id"])
    # A path's current item first (a changed file is a new item; the manifest knows which one it holds now).
    current = {str(r["item_id"]) for r in store.fetch(
        sa.select(sf.c.item_id).where(sf.c.path.in_(sorted(paths)), sf.c.item_id.isnot(None)))}  # fmt: skip
    if not current:
        current = {str(r["item_id"]) for r in store.fetch(
            sa.select(it.c.item_id).where(sa.or_(it.c.source_path.in_(sorted(paths)), it.c.uri.in_(sorted(paths)))))}  # fmt: skip
    if not current and len(text) >= MIN_PREFIX:
        # autoescape: "%" and "_" typed by a person are characters of an id, not LIKE wildcards.
        current = {str(r["item_id"]) for r in store.fetch(
            sa.select(it.c.item_id).where(it.c.item_id.startswith(text, autoescape=True)).limit(3))}  # fmt: skip
    if len(current) == 1:
        return current.pop()
    if current:
        raise UnknownItem(f"{name!r} matches {len(current)} items in the label store (give more of the id)")
    raise UnknownItem(f"no item {name!r} in the label store (an item id or a unique prefix of at least {MIN_PREFIX} "
                      "characters, a source path or a URI)")  # fmt: skip


def flag_item(store: LabelStore, item_id: str, reason: str, *, actor: str) -> FlagOutcome:
    """Ask for an expert's answer on ``item_id`` (see the module docstring); the reason is kept with who asked.

    Raises:
        FlagRefused: an empty reason, an item that is not active, or one an expert already answered.
    """
    why = " ".join(reason.split())
    if not why:
        raise FlagRefused("a flag needs a reason (--reason \"...\"): the expert reads it beside the item")
    rows = store.fetch(sa.select(items_table.c.status, items_table.c.status_reason).where(items_table.c.item_id == item_id))
    if not rows:
        raise UnknownItem(f"no item {item_id!r} in the label store")
    if rows[0]["status"] != "active":
        raise FlagRefused(f"item {item_id[:12]} is {rows[0]['status']} ({rows[0]['status_reason'] or 'no reason'}): "
                          "only active items go to review")  # fmt: skip
    answered = store.fetch(sa.select(adjudications_table.c.label).where(adjudications_table.c.item_id == item_id)
                           .order_by(adjudications_table.c.id.desc()).limit(1))  # fmt: skip
    if answered:
        raise FlagRefused(f"item {item_id[:12]} already has an expert answer ({answered[0]['label']!r}); the review "
                          "project shows an item once, and that answer overrides the crowd")  # fmt: skip
    request = ReviewRequest(item_id, EXPERT_REVIEW, f"flagged by {actor}: {why}")
    done = sync_review_requests(store, MANUAL_SOURCE, [request], settled=[])
    return FlagOutcome(item_id, recorded=bool(done.requested), review_task=_review_task(store, item_id))


def unflag_item(store: LabelStore, item_id: str) -> bool:
    """Resolve the item's open flag; whether it had one. A review task already pushed stays in Label Studio."""
    if item_id not in open_request_items(store, MANUAL_SOURCE):
        return False
    return sync_review_requests(store, MANUAL_SOURCE, [], settled=[item_id]).resolved > 0


def _review_task(store: LabelStore, item_id: str) -> int | None:
    rows = store.fetch(sa.select(review_tasks_table.c.ls_task_id).where(review_tasks_table.c.item_id == item_id))
    return int(rows[0]["ls_task_id"]) if rows else None
