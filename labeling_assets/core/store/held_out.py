"""The items held out of the current dataset version (``held_out_items``, migration 12): written by
``dataset_splits``, read by the card, the QA report and ``labeling-assets item``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from labeling_assets.core.store.held_out_schema import held_out_items_table
from labeling_assets.core.store.schema import LabelStore, utcnow


def record_held_out(store: LabelStore, version: str, held: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the held-out set with ``held`` (item_id -> {"reason", ...detail}) of ``version``."""
    now = utcnow()
    rows = [
        {"item_id": item, "dataset_version": version, "reason": str(why.get("reason", "")),
         "detail": {k: v for k, v in why.items() if k != "reason"}, "held_at": now}
        for item, why in sorted(held.items())
    ]  # fmt: skip
    with store.begin() as conn:
        conn.execute(held_out_items_table.delete())
        if rows:
            conn.execute(held_out_items_table.insert(), rows)


def held_out(store: LabelStore) -> dict[str, dict[str, Any]]:
    """item_id -> {"reason", "dataset_version", "held_at", ...detail} of the items held out now."""
    t = held_out_items_table
    out = {}
    for r in store.fetch(sa.select(t).order_by(t.c.item_id)):
        detail = json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]
        out[r["item_id"]] = {"item_id": r["item_id"], "reason": r["reason"], "dataset_version": r["dataset_version"],
                             "held_at": r["held_at"], **(detail or {})}  # fmt: skip
    return out
