"""Perceptual hashes of items in the label store (computed at ingest, backfilled for older items).

An item whose stored copy cannot be read or decoded gets a row with a NULL hash and the reason, so it is
not re-read on every run; it simply belongs to no near-duplicate group.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from labeling_assets.core.dataset.near_duplicates import phash_bytes, to_hex
from labeling_assets.core.store.lineage_schema import item_phashes_table
from labeling_assets.core.store.schema import LabelStore, chunked, items_table, utcnow


def _read(uri: str | None) -> bytes:
    if not uri:
        raise FileNotFoundError("the item has no stored copy")
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    with open(path, "rb") as handle:
        return handle.read()


def ensure_phashes(store: LabelStore, item_ids: Sequence[str] | None = None) -> int:
    """Compute and store the pHash of every active item (or of ``item_ids``) that has no row yet; return how
    many rows were written."""
    done = {r["item_id"] for r in store.fetch(sa.select(item_phashes_table.c.item_id))}
    query = sa.select(items_table.c.item_id, items_table.c.uri)
    if item_ids is None:
        query = query.where(items_table.c.status == "active")
    wanted = None if item_ids is None else set(item_ids)
    rows = []
    now = utcnow()
    for row in store.fetch(query):
        item = row["item_id"]
        if item in done or (wanted is not None and item not in wanted):
            continue
        try:
            value: str | None = to_hex(phash_bytes(_read(row["uri"])))
            problem = None
        except Exception as exc:  # noqa: BLE001 - any unreadable copy: record why, never fail the run
            value, problem = None, f"{type(exc).__name__}: {exc}"[:500]
        rows.append({"item_id": item, "phash": value, "problem": problem, "computed_at": now})
    # Two runs may hash the same new item at once (ingest and dataset_splits): the first row wins, same value.
    insert = (postgresql.insert if store.backend == "postgresql" else sqlite.insert)(item_phashes_table)
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(insert.on_conflict_do_nothing(index_elements=["item_id"]), list(part))
    return len(rows)


def load_phashes(store: LabelStore) -> pd.Series:
    """item_id -> 16-hex-digit pHash of every item that has one."""
    rows = store.fetch(
        sa.select(item_phashes_table.c.item_id, item_phashes_table.c.phash).where(
            item_phashes_table.c.phash.is_not(None)
        )
    )
    return pd.Series({r["item_id"]: r["phash"] for r in rows}, dtype=object)
