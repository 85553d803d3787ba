"""Class schema changes in the label store: the recorded renames, merges and splits, and answers read through them.

The annotation rows are never touched: readers of answers (``queries.current_annotations``, ``gold_labels``, stored
gold, adjudications) call :func:`read_through`, which maps each answer in its kind's shape
(``core/consensus/class_schema.map_answer``). No change recorded: the frame is returned as it is (one small query).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.consensus import class_schema as rules
from labeling_assets.core.store.class_changes_schema import class_schema_changes_table
from labeling_assets.core.store.derived_schema import requeue_actions_table
from labeling_assets.core.store.schema import chunked


def schema_events(conn_or_store: Any) -> list[dict[str, Any]]:
    """Every recorded class schema change, oldest first (a store or an open connection)."""
    t = class_schema_changes_table
    query = sa.select(t).order_by(t.c.class_list_version, t.c.id)
    if isinstance(conn_or_store, Connection):
        return [dict(r) for r in conn_or_store.execute(query).mappings()]
    return [dict(r) for r in conn_or_store.fetch(query)]


def as_changes(events: Sequence[Mapping[str, Any]]) -> list[rules.ClassChange]:
    return [rules.ClassChange(str(e["change"]), tuple(e["sources"]), tuple(e["targets"])) for e in events]


def class_mapping(store: Any) -> dict[str, str]:
    """Old class -> the class its answers read as now (recorded renames and merges; {} when there are none)."""
    return rules.class_mapping(as_changes(schema_events(store)))


def retired_names(events: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Class name -> the rename or merge (as declared) that took it out of the class list."""
    out: dict[str, str] = {}
    for change, event in zip(as_changes(events), events, strict=True):
        if change.change != rules.SPLIT:
            out.update({name: str(event["declared"]) for name in change.retired})
    return out


def read_through(store: Any, frame: pd.DataFrame, column: str = "label") -> pd.DataFrame:
    """``frame`` with ``column`` read through the recorded renames and merges (the same frame when there are none)."""
    mapping = class_mapping(store)
    if not mapping or frame.empty:
        return frame
    return frame.assign(**{column: frame[column].map(lambda v: rules.map_answer(v, mapping))})


def touched(
    current: pd.DataFrame, changes: Sequence[rules.ClassChange], classes_of: Any
) -> list[tuple[int, list[str]]]:
    """Per change, (answers naming one of its old classes, the items holding them, sorted), in ``current``
    (item_id, label: the current answers as read before the change)."""
    out: list[tuple[int, list[str]]] = []
    for change in changes:
        old = set(change.retired) if change.change != rules.SPLIT else set(change.sources)
        if current.empty:
            out.append((0, []))
            continue
        hit = current["label"].map(lambda v, old=old: bool(old & set(classes_of(v)))).to_numpy(dtype=bool)
        out.append((int(hit.sum()), sorted(set(current.loc[hit, "item_id"].astype(str)))))
    return out


def insert_changes(
    conn: Connection,
    version: int,
    changes: Sequence[rules.ClassChange],
    counts: Sequence[tuple[int, list[str]]],
    reason: str,
    now: Any,
) -> None:
    """Record ``changes`` with class list ``version`` (in the caller's transaction, with the version's row)."""
    rows = [
        {
            "class_list_version": version, "change": c.change, "declared": c.text, "sources": list(c.sources),
            "targets": list(c.targets), "reason": reason, "changed_at": now, "answers": n, "items": len(items),
            "item_ids": items if c.change == rules.SPLIT else None,
        }
        for c, (n, items) in zip(changes, counts, strict=True)
    ]
    if rows:
        conn.execute(class_schema_changes_table.insert(), rows)


def pending_changes(declared: Sequence[rules.ClassChange], events: Sequence[Mapping[str, Any]]) -> list[rules.ClassChange]:
    """The declared changes not recorded yet (a declaration left in the settings after its change is a no-op)."""
    done = {str(e["declared"]) for e in events}
    return [c for c in declared if c.text not in done]


def splits_by_class(events: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Split class -> its recorded split event (the newest, when a name was split twice)."""
    return {str(e["sources"][0]): e for e in events if e["change"] == rules.SPLIT}


def schema_change_report(
    store: Any, *, after: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The recorded changes (recorded after ``after`` and by ``until`` when given), oldest first, each with
    ``requeued``: how many of a split's items the queue stage has sent back since (requeue_actions; 0 otherwise).
    What the dataset card and diff show."""
    rq = requeue_actions_table
    out: list[dict[str, Any]] = []
    for event in schema_events(store):
        when = _utc(event["changed_at"])
        if (after is not None and when <= _utc(after)) or (until is not None and when > _utc(until)):
            continue
        requeued = 0
        if event["change"] == rules.SPLIT and event.get("item_ids"):
            for part in chunked(list(event["item_ids"])):
                rows = store.fetch(
                    sa.select(sa.func.count(sa.distinct(rq.c.item_id)).label("n")).where(
                        rq.c.item_id.in_(list(part)), rq.c.acted_at >= event["changed_at"]
                    )
                )
                requeued += int(rows[0]["n"]) if rows else 0
        out.append({**{k: v for k, v in event.items() if k != "item_ids"}, "requeued": requeued})
    return out


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
