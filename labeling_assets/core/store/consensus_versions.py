"""Consensus rows in the label store: versioned (a new row only when an item's result changes).

Consensus is derived data: the annotations behind it stay, so an item's consensus can be retracted (a
new version marked ``retracted`` with its reason, never a DELETE) and computed again when its votes come
back. The class list is versioned here too, with the votes a class removal retracted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.class_schema import CLASS_SPLIT, ClassChange, validate_changes
from labeling_assets.core.consensus.encoding import json_label
from labeling_assets.core.consensus.retraction import (
    CLASS_REMOVED,
    ITEM_SUPERSEDED,
    ClassListChange,
    LiveConsensus,
    class_list_diff,
    class_list_reason,
    retraction_reason,
)
from labeling_assets.core.store.class_changes import (
    insert_changes,
    pending_changes,
    retired_names,
    schema_events,
    splits_by_class,
    touched,
)
from labeling_assets.core.store.derived_schema import (
    class_list_versions_table,
    consensus_choices_table,
    vote_retractions_table,
)
from labeling_assets.core.store.queries import SUPERSEDED, StoreVotes, current_annotations
from labeling_assets.core.store.schema import (
    LabelStore,
    chunked,
    consensus_table,
    items_table,
    latest_consensus_query,
    utcnow,
)

# The classes a stored answer names (TaskKind.classes_of).
ClassesOf = Callable[[Any], list[str]]


def write_consensus(
    store: LabelStore,
    labels: pd.DataFrame,
    method: str,
    run_id: str | None,
    probabilities: dict[str, dict[str, float]] | None = None,
) -> int:
    """Append a new consensus version for every item whose result changed; return how many were written.

    Unchanged items keep their version, so re-running on the same annotations writes nothing; an item
    whose newest version is a retraction gets a new live version. The class probabilities are stored with
    each new version but do not by themselves make one: the label, confidence, agreement and annotator
    count already change whenever the votes do. Unchanged rows written without probabilities (before
    schema migration 3) get them filled in place.
    """
    previous = {row["item_id"]: row for row in store.fetch(latest_consensus_query(include_retracted=True))}
    now = utcnow()
    rows = []
    backfill = []  # unchanged rows written before probabilities were stored (schema migration 3)
    for record in labels.to_dict("records"):
        label = json_label(record["label"])
        old = previous.get(record["item_id"])
        probs = (probabilities or {}).get(str(record["item_id"]))
        if (
            old is not None
            and not old["retracted"]
            and old["label"] == label
            and old["method"] == method
            and old["n_annotators"] == int(record["n_annotators"])
            and abs(old["confidence"] - float(record["confidence"])) < 1e-9
        ):
            if old.get("probabilities") is None and probs is not None:
                backfill.append({"row_id": old["id"], "probs": probs})
            continue
        rows.append(
            _next_version(
                record["item_id"], old, now, run_id, label=label, method=method,
                confidence=float(record["confidence"]), agreement=float(record["agreement"]),
                n_annotators=int(record["n_annotators"]), probabilities=probs, retracted=False,
            )
        )
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(consensus_table.insert(), list(part))
        if backfill:  # derived data filled in place: not a new consensus version
            conn.execute(
                consensus_table.update()
                .where(consensus_table.c.id == sa.bindparam("row_id"))
                .values(probabilities=sa.bindparam("probs")),
                backfill,
            )
    return len(rows)


def _next_version(
    item_id: str, old: Mapping[str, Any] | None, now: dt.datetime, run_id: str | None, **fields: Any
) -> dict[str, Any]:
    """The consensus row that follows ``old`` (the item's newest version, None before its first) with ``fields``."""
    version = (old["version"] + 1) if old is not None else 1
    return {"item_id": item_id, "version": version, "computed_at": now, "run_id": run_id, **fields}


def consensus_to_retract(
    store: LabelStore,
    loaded: StoreVotes,
    aggregated: set[str],
    *,
    min_annotators: int,
    classes: Sequence[str],
) -> dict[str, tuple[str, int]]:
    """item_id -> (reason, live votes) for every live consensus that must be retracted now.

    ``aggregated``: the items this run computed a consensus for (their new version replaces the old one).
    """
    live_votes = loaded.votes.frame.groupby("item_id")["labeler_id"].nunique().to_dict()
    replaced_by = _replaced_by(store)
    out: dict[str, tuple[str, int]] = {}
    for row in store.fetch(latest_consensus_query()):
        item = str(row["item_id"])
        live = int(live_votes.get(item, 0))
        state = LiveConsensus(
            item_id=item,
            label=row["label"],
            status=loaded.statuses.get(item),
            live_votes=live,
            removed_class_votes=max(loaded.held.get(item, 0) - live, 0),
            superseded_by=replaced_by.get(item),
        )
        reason = retraction_reason(
            state, aggregated=item in aggregated, min_annotators=min_annotators, classes=classes
        )
        if reason is not None:
            out[item] = (reason, live)
    return out


def retract_consensus(store: LabelStore, reasons: Mapping[str, tuple[str, int]], run_id: str | None) -> int:
    """Append a retraction version for each item in ``reasons`` whose newest version is still live.

    The row keeps the retracted label and method (what was withdrawn) with confidence 0 and the live vote
    count; readers of the live consensus skip it. Returns how many retraction rows were written.
    """
    if not reasons:
        return 0
    now = utcnow()
    rows = []
    for old in store.fetch(latest_consensus_query(include_retracted=True)):
        item = old["item_id"]
        if item not in reasons or old["retracted"]:
            continue
        reason, live = reasons[item]
        rows.append(
            _next_version(
                item, old, now, run_id, label=old["label"], method=old["method"], confidence=0.0, agreement=None,
                n_annotators=int(live), probabilities=None, retracted=True, retraction_reason=reason,
            )
        )
    with store.begin() as conn:
        for part in chunked(rows):
            conn.execute(consensus_table.insert(), list(part))
    return len(rows)


def retraction_counts(store: LabelStore) -> dict[str, int]:
    """Items whose consensus is retracted now, by the reason's kind (the text before the first colon)."""
    rows = store.fetch(latest_consensus_query(include_retracted=True).where(consensus_table.c.retracted.is_(True)))
    counts: dict[str, int] = {}
    for row in rows:
        kind = str(row["retraction_reason"] or "unknown").split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _replaced_by(store: LabelStore) -> dict[str, str]:
    """old item_id -> the item that superseded it at its source path."""
    rows = store.fetch(
        sa.select(items_table.c.item_id, items_table.c.supersedes).where(items_table.c.supersedes.is_not(None))
    )
    return {str(r["supersedes"]): str(r["item_id"]) for r in rows}


# --- the class list -------------------------------------------------------------------------------


def class_list_history(store: LabelStore) -> list[dict[str, Any]]:
    """Every class list version, oldest first."""
    t = class_list_versions_table
    return store.fetch(sa.select(t).order_by(t.c.version))


def record_class_list(
    store: LabelStore,
    classes: Sequence[str],
    reason: str | None = None,
    *,
    changes: Sequence[ClassChange] = (),
    classes_of: ClassesOf | None = None,
) -> ClassListChange | None:
    """Record ``classes`` as a new class list version when it differs from the latest; None when unchanged.

    ``changes``: the declared renames, merges and splits (``ProjectSettings.class_changes``); those not recorded yet
    are validated against the step from the latest list to ``classes`` and stored with the new version, with the
    current answers they touch (``classes_of``: the kind's; None: not counted). Idempotent and safe under
    concurrent runs: the version is the primary key, so a second writer of the same version fails its insert and
    finds the list recorded.

    Raises:
        ClassSchemaError: a declared change does not describe this step (one line; nothing is recorded).
    """
    t = class_list_versions_table
    current = [str(c) for c in classes]
    for _attempt in range(3):
        history = class_list_history(store)
        latest = history[-1] if history else None
        events = schema_events(store)
        pending = pending_changes(changes, events)
        before = list(latest["classes"]) if latest else None
        if latest is not None and before == current and not pending:
            return None
        validate_changes(pending, before, current, retired_names(events))  # an unchanged list: targets missing
        added, removed = class_list_diff(before, current)
        version = (int(latest["version"]) + 1) if latest else 1
        covered = {name for c in pending for name in (*c.sources, *c.targets)}  # said by the change itself
        text = class_list_reason([a for a in added if a not in covered], [r for r in removed if r not in covered],
                                 reason, first=latest is None, changes=[c.text for c in pending])  # fmt: skip
        counts = touched(current_annotations(store), pending, classes_of or (lambda _a: []))  # None: not counted
        now = utcnow()
        try:
            with store.begin() as conn:
                conn.execute(
                    t.insert().values(
                        version=version, classes=current, added=added, removed=removed, reason=text,
                        changed_at=now, votes_retracted=0,
                    )
                )
                insert_changes(conn, version, pending, counts, text, now)
        except sa.exc.IntegrityError:
            continue  # another run recorded a version meanwhile: compare again
        return ClassListChange(version, tuple(current), tuple(added), tuple(removed), text,
                               tuple(c.text for c in pending))  # fmt: skip
    return None


def _removed_classes(label: Any, allowed: set[str], removed_in: Mapping[str, int], classes_of: ClassesOf) -> list[str]:
    """The classes a vote names that were removed from the class list (a set names each of its classes)."""
    return [n for n in classes_of(label) if n not in allowed and n in removed_in]


def record_vote_retractions(store: LabelStore, classes: Sequence[str], *, classes_of: ClassesOf) -> dict[str, int]:
    """Record (once) every current vote that stopped counting: a class it names (``classes_of``, the kind's: any
    class of a set)
    was removed from the class list, or its item was superseded. Returns the new retractions by reason; the annotation rows stay as they are.

    A class that is added back makes its votes count again (they are read against the current list); the
    retraction rows stay as the history of what was withdrawn and when.
    """
    history = class_list_history(store)
    split = splits_by_class(schema_events(store))  # a split class's answers stop counting as class_split
    removed_in: dict[str, int] = {}  # class -> the version that last removed it
    for row in history:
        for name in row["removed"]:
            removed_in[str(name)] = int(row["version"])
    current = current_annotations(store)
    if current.empty:
        return {}
    statuses = {r["item_id"]: r["status"] for r in store.fetch(sa.select(items_table.c.item_id, items_table.c.status))}
    allowed = set(map(str, classes))
    removed_class = current["label"].map(lambda v: bool(_removed_classes(v, allowed, removed_in, classes_of)))
    on_superseded = current["item_id"].map(statuses).eq(SUPERSEDED)
    candidates = current[(removed_class | on_superseded).to_numpy(dtype=bool)]  # most votes still count
    wanted: list[dict[str, Any]] = []
    now = utcnow()
    for ann in candidates.to_dict("records"):
        reasons: list[tuple[str, str, int | None]] = []
        gone = _removed_classes(ann["label"], allowed, removed_in, classes_of)
        if gone:
            removed_at = max(removed_in[n] for n in gone)
            what = f"class {gone[0]!r}" if len(gone) == 1 else f"classes {gone!r}"
            event = next((split[n] for n in gone if n in split and int(split[n]["class_list_version"]) == removed_at), None)
            if event is not None:  # which part the answer meant is unknown: the item is asked again
                into = ", ".join(map(repr, event["targets"]))
                reasons.append((CLASS_SPLIT, f"class {event['sources'][0]!r} split into {into} in class list "
                                             f"version {removed_at}", removed_at))  # fmt: skip
            else:
                reasons.append((CLASS_REMOVED, f"{what} removed in class list version {removed_at}", removed_at))
        if statuses.get(ann["item_id"]) == SUPERSEDED:
            reasons.append((ITEM_SUPERSEDED, "the item's source file changed: a new item replaced it", None))
        for reason, detail, version in reasons:
            wanted.append(
                {
                    "ls_annotation_id": int(ann["ls_annotation_id"]),
                    "annotation_version": int(ann["version"]),
                    "item_id": ann["item_id"],
                    "labeler_id": ann["labeler_id"],
                    "label": ann["label"],
                    "reason": reason,
                    "detail": detail,
                    "class_list_version": version,
                    "retracted_at": now,
                }
            )
    if not wanted:
        return {}
    v = vote_retractions_table
    done = {
        (int(r["ls_annotation_id"]), int(r["annotation_version"]), r["reason"])
        for r in store.fetch(sa.select(v.c.ls_annotation_id, v.c.annotation_version, v.c.reason))
    }
    fresh = [w for w in wanted if (w["ls_annotation_id"], w["annotation_version"], w["reason"]) not in done]
    counts: dict[str, int] = {}
    per_version: dict[int, int] = {}
    for w in fresh:
        counts[w["reason"]] = counts.get(w["reason"], 0) + 1
        if w["class_list_version"] is not None:
            per_version[w["class_list_version"]] = per_version.get(w["class_list_version"], 0) + 1
    with store.begin() as conn:
        for part in chunked(fresh):
            conn.execute(v.insert(), list(part))
        t = class_list_versions_table
        for version, n in per_version.items():
            conn.execute(t.update().where(t.c.version == version).values(votes_retracted=t.c.votes_retracted + n))
    return counts


def vote_retraction_counts(store: LabelStore) -> dict[str, int]:
    """Every vote retraction recorded so far, by reason."""
    v = vote_retractions_table
    rows = store.fetch(sa.select(v.c.reason, sa.func.count().label("n")).group_by(v.c.reason))
    return {str(r["reason"]): int(r["n"]) for r in rows}


def scoreboard_records(board: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    """A bake-off scoreboard as JSON-ready rows (None when no bake-off ran)."""
    if board is None:
        return None
    return [
        {
            "method": str(r["method"]),
            "n_gold": int(r["n_gold"]),
            "correct": int(r["correct"]),
            "accuracy": float(r["accuracy"]),
            "ci_low": float(r["ci_low"]),
            "ci_high": float(r["ci_high"]),
            "chosen": bool(r["chosen"]),
        }
        for r in board.to_dict("records")
    ]


def record_consensus_choice(
    store: LabelStore,
    *,
    run_id: str | None,
    requested_method: str,
    method: str,
    reason: str,
    n_gold: int,
    scoreboard: pd.DataFrame | None,
) -> None:
    """Append the method a consensus run used, why, and its bake-off scoreboard (m007).

    Kept in the store next to the consensus rows it explains (same ``run_id``), so it lives and is backed
    up with them, and a dataset version's labels can be traced to the choice that made them.
    """
    with store.begin() as conn:
        conn.execute(
            consensus_choices_table.insert().values(
                run_id=run_id,
                requested_method=requested_method,
                method=method,
                reason=reason,
                n_gold=n_gold,
                scoreboard=scoreboard_records(scoreboard),
                computed_at=utcnow(),
            )
        )


def consensus_choices(store: LabelStore, run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Recorded consensus choices, newest first (only those of ``run_ids`` when given)."""
    t = consensus_choices_table
    query = sa.select(t).order_by(t.c.computed_at.desc(), t.c.id.desc())
    if run_ids is not None:
        query = query.where(t.c.run_id.in_(list(run_ids)))
    return [dict(row) for row in store.fetch(query)]


def latest_consensus_choice(store: LabelStore) -> dict[str, Any] | None:
    """The newest recorded consensus choice, or None before consensus_labels aggregated anything."""
    t = consensus_choices_table
    rows = store.fetch(sa.select(t).order_by(t.c.computed_at.desc(), t.c.id.desc()).limit(1))
    return dict(rows[0]) if rows else None
