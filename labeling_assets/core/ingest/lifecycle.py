"""What happens to an item when the source stops (or starts again) providing its bytes.

An item is *held* while some source path's manifest row points at it and that path is not gone. An active item
no path holds any more is retired by a status change, never a DELETE (its bytes, votes and history stay):
``superseded`` when its path now holds other bytes, ``missing`` when its path is gone or can no longer be
read. A missing item whose bytes come back is active again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store.schema import chunked, items_table, source_files_table

ACTIVE = "active"
# An audio file a text_edits row shows (core.ingest.edits): stored and measured like an item, never queued itself.
MEDIA = "media"
MISSING = "missing"
SUPERSEDED = "superseded"
# items.status_reason of a retired item
SOURCE_CHANGED = "source_changed"
SOURCE_MISSING = "source_missing"
SOURCE_UNREADABLE = "source_unreadable"

ON_MISSING_RETIRE = "retire"
ON_MISSING_KEEP = "keep"
ON_MISSING_POLICIES = (ON_MISSING_RETIRE, ON_MISSING_KEEP)


def held(conn: Connection, item_ids: Iterable[str]) -> set[str]:
    """The items among ``item_ids`` that a present source path (of any source) still holds."""
    found: set[str] = set()
    sf = source_files_table
    for chunk in chunked(sorted(set(item_ids))):
        found.update(
            conn.execute(
                sa.select(sf.c.item_id).distinct().where(sf.c.item_id.in_(chunk), sf.c.outcome != MISSING)
            ).scalars()
        )
    return found


def retire_unheld(conn: Connection, details: Mapping[str, str], *, status: str, reason: str) -> list[str]:
    """Give active items that no path holds any more ``status`` (with ``reason`` and the item's detail)."""
    unheld = [item_id for item_id in details if item_id not in held(conn, details)]
    retired: list[str] = []
    for item_id in unheld:
        result = conn.execute(
            items_table.update()
            .where(items_table.c.item_id == item_id, items_table.c.status == ACTIVE)
            .values(status=status, status_reason=reason, status_detail=details[item_id])
        )
        if result.rowcount:
            retired.append(item_id)
    return retired


def reactivate(conn: Connection, item_ids: Iterable[str]) -> None:
    """Missing items whose bytes a source path provides again are active again."""
    for chunk in chunked(sorted(set(item_ids))):
        conn.execute(
            items_table.update()
            .where(items_table.c.item_id.in_(chunk), items_table.c.status == MISSING)
            .values(status=ACTIVE, status_reason=None, status_detail=None)
        )


def mark_missing(
    conn: Connection, source: str, gone: Mapping[str, str | None], *, retire: bool, now: dt.datetime
) -> list[str]:
    """Record the paths of ``gone`` (path -> item id) as missing; retire their items when ``retire``.

    The manifest row keeps its item id, so the same bytes coming back are recognised. Returns the ids of
    the items retired.
    """
    sf = source_files_table
    for chunk in chunked(sorted(gone)):
        conn.execute(
            sf.update()
            .where(sf.c.source == source, sf.c.path.in_(chunk))
            .values(outcome=MISSING, reason=None, detail="gone from the source", last_checked_at=now)
        )
    if not retire:
        return []
    details: dict[str, Any] = {}
    for path, item_id in sorted(gone.items()):
        if item_id:
            details.setdefault(item_id, f"{source}/{path} is gone from the source")
    return retire_unheld(conn, details, status=MISSING, reason=SOURCE_MISSING)
