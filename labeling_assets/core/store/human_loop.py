"""The human loop in the label store: labeler names and partition keys, pauses, adjudicated labels, review tasks.

Tables are in ``human_loop_schema`` (migration 10). Every write here is append-only except the labelers
registry's name columns (a registry, not labels): a partition key, once given, never changes, so a labeler who
renames themselves in Label Studio keeps their history under the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.store.class_changes import read_through
from labeling_assets.core.store.human_loop_schema import (
    adjudications_table,
    labeler_pauses_table,
    review_tasks_table,
)
from labeling_assets.core.store.schema import LabelStore, labelers_table, utcnow

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind

PAUSE = "pause"
RESUME = "resume"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")
MAX_KEY_LENGTH = 64


def sanitize_partition_key(name: str) -> str:
    """A Label Studio username or email as a Dagster partition key: safe characters only, no '..', <= 64 chars."""
    key = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", name.strip())).strip("._")
    return key[:MAX_KEY_LENGTH]


def user_display_name(user: Mapping[str, Any]) -> str:
    """The identity a person reads for a Label Studio user: the username, else the email, else ``user-<id>``."""
    for field in ("username", "email"):
        value = str(user.get(field) or "").strip()
        if value:
            return value
    return f"user-{user.get('id')}"


def _masked(user: Mapping[str, Any]) -> bool:
    return user.get("username") == "Deleted" and user.get("email") == "Deleted"


def record_labeler_names(store: LabelStore, users: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Give every known labeler without a partition key one from their Label Studio name; returns id -> key (all).

    A key taken by another labeler (two names that sanitize alike) gets ``-<id>`` appended, so keys stay unique.
    """
    # Label Studio masks a user removed from the organization as "Deleted": keep the name we knew.
    by_id = {str(u["id"]): user_display_name(u) for u in users if u.get("id") is not None and not _masked(u)}
    t = labelers_table
    with store.begin() as conn:
        rows = conn.execute(sa.select(t.c.labeler_id, t.c.username, t.c.partition_key)).mappings().all()
        taken = {r["partition_key"] for r in rows if r["partition_key"]}
        for r in rows:
            labeler_id, name = r["labeler_id"], by_id.get(r["labeler_id"])
            if r["partition_key"] or name is None:
                if name is not None and name != r["username"]:  # renamed: show the new name, keep the key
                    conn.execute(t.update().where(t.c.labeler_id == labeler_id).values(username=name))
                continue
            key = sanitize_partition_key(name) or labeler_id
            if key in taken:
                key = f"{key[: MAX_KEY_LENGTH - len(labeler_id) - 1]}-{labeler_id}"
            taken.add(key)
            conn.execute(
                t.update().where(t.c.labeler_id == labeler_id).values(username=name, partition_key=key, display_name=name)
            )
    return labeler_keys(store)


def labeler_keys(store: LabelStore) -> dict[str, str]:
    """Labeler id -> partition key (the id itself for labelers the store has no name for)."""
    t = labelers_table
    return {r["labeler_id"]: r["partition_key"] or r["labeler_id"] for r in store.fetch(sa.select(t))}


def labeler_ids_for(store: LabelStore, keys: Sequence[str]) -> dict[str, str]:
    """Partition key (or numeric id, or username) -> labeler id; unknown keys map to themselves."""
    t = labelers_table
    lookup: dict[str, str] = {}
    for r in store.fetch(sa.select(t.c.labeler_id, t.c.username, t.c.partition_key)):
        for alias in (r["labeler_id"], r["username"], r["partition_key"]):
            if alias:
                lookup.setdefault(str(alias), r["labeler_id"])
    return {key: lookup.get(key, key) for key in keys}


# --- pauses -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseState:
    labeler_id: str
    paused: bool
    since: dt.datetime | None  # when the current pause began
    reason: str | None
    label_studio_effect: str | None


def pause_states(store: LabelStore) -> dict[str, PauseState]:
    """The newest pause/resume event per labeler (labelers never paused are absent)."""
    t = labeler_pauses_table
    out: dict[str, PauseState] = {}
    for r in store.fetch(sa.select(t).order_by(t.c.at, t.c.id)):
        out[r["labeler_id"]] = PauseState(
            r["labeler_id"], r["action"] == PAUSE, r["at"] if r["action"] == PAUSE else None, r["reason"],
            r["label_studio_effect"],
        )  # fmt: skip
    return out


def paused_since(store: LabelStore) -> dict[str, dt.datetime]:
    """Currently paused labeler id -> when the pause began."""
    return {k: s.since for k, s in pause_states(store).items() if s.paused and s.since is not None}


def pause_intervals(store: LabelStore) -> dict[str, list[tuple[dt.datetime, dt.datetime | None]]]:
    """Labeler id -> every pause as (from, until), until None while it lasts: votes created inside do not count."""
    out: dict[str, list[tuple[dt.datetime, dt.datetime | None]]] = {}
    for row in pause_history(store):
        spans = out.setdefault(row["labeler_id"], [])
        if row["action"] == PAUSE and (not spans or spans[-1][1] is not None):
            spans.append((row["at"], None))
        elif row["action"] == RESUME and spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], row["at"])
    return {k: v for k, v in out.items() if v}


def record_pause_event(
    store: LabelStore, labeler_id: str, action: str, *, reason: str | None, actor: str | None,
    label_studio_effect: str | None, items_reopened: int = 0, at: dt.datetime | None = None,
) -> None:  # fmt: skip
    """Append one pause or resume event (the audit trail of who paused whom, why, and what Label Studio did)."""
    if action not in (PAUSE, RESUME):
        raise ValueError(f"action must be {PAUSE!r} or {RESUME!r}, not {action!r}")
    with store.begin() as conn:
        conn.execute(
            labeler_pauses_table.insert().values(
                labeler_id=labeler_id, action=action, reason=reason, actor=actor,
                label_studio_effect=label_studio_effect, items_reopened=items_reopened, at=at or utcnow(),
            )  # fmt: skip
        )


def newest_pause_id(store: LabelStore, *, actor: str) -> int | None:
    """The id of the newest pause event that ``actor`` recorded (None: none yet)."""
    t = labeler_pauses_table
    value = store.fetch(sa.select(sa.func.max(t.c.id).label("id")).where(t.c.action == PAUSE, t.c.actor == actor))
    return int(value[0]["id"]) if value and value[0]["id"] is not None else None


def pause_history(store: LabelStore) -> list[dict[str, Any]]:
    t = labeler_pauses_table
    return [dict(r) for r in store.fetch(sa.select(t).order_by(t.c.at, t.c.id))]


# --- adjudications --------------------------------------------------------------------------------------


def _hash(label: Any) -> str:
    return hashlib.sha256(json.dumps(label, sort_keys=True).encode()).hexdigest()


def record_adjudications(store: LabelStore, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append expert answers (item_id, label, reviewer_id, reviewer_name, ls_project_id, ls_task_id,
    ls_annotation_id, answered_at) not stored yet in this form; returns how many were new."""
    t = adjudications_table
    now = utcnow()
    with store.begin() as conn:
        seen = {(r[0], r[1]) for r in conn.execute(sa.select(t.c.ls_annotation_id, t.c.content_hash))}
        fresh = []
        for row in rows:
            digest = _hash(row["label"])
            if (int(row["ls_annotation_id"]), digest) not in seen:
                seen.add((int(row["ls_annotation_id"]), digest))
                fresh.append({**row, "content_hash": digest, "synced_at": now})
        if fresh:
            conn.execute(t.insert(), fresh)
    return len(fresh)


def adjudication_frame(store: LabelStore) -> pd.DataFrame:
    """The newest expert answer per item: item_id, label, reviewer_id, reviewer_name, answered_at."""
    t = adjudications_table
    rows = store.fetch(sa.select(t).order_by(t.c.id))
    columns = ["item_id", "label", "reviewer_id", "reviewer_name", "answered_at"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame([dict(r) for r in rows])
    # An expert's answer of a renamed or merged class reads as the class it became.
    return read_through(store, frame.drop_duplicates("item_id", keep="last")[columns].reset_index(drop=True))


def adjudicated_labels(store: LabelStore) -> pd.Series:
    """item_id -> the expert's class (newest answer per item)."""
    frame = adjudication_frame(store)
    return pd.Series(frame["label"].to_numpy(dtype=object), index=frame["item_id"].astype(str), dtype=object)


# --- review tasks ---------------------------------------------------------------------------------------


def review_tasks(store: LabelStore, project_id: int) -> dict[str, int]:
    """item_id -> task id in the review project."""
    t = review_tasks_table
    return {r["item_id"]: int(r["ls_task_id"]) for r in store.fetch(sa.select(t).where(t.c.ls_project_id == project_id))}


def record_review_tasks(store: LabelStore, project_id: int, tasks: Mapping[str, tuple[int, str]]) -> None:
    """Remember item_id -> (task id, reason) pushed to the review project."""
    if not tasks:
        return
    now = utcnow()
    rows = [{"item_id": i, "ls_project_id": project_id, "ls_task_id": tid, "reason": why, "pushed_at": now}
            for i, (tid, why) in tasks.items()]  # fmt: skip
    with store.begin() as conn:
        conn.execute(review_tasks_table.insert(), rows)


def review_backlog(store: LabelStore) -> dict[str, int]:
    """Items queued for an expert, answered, and still waiting (for the QA report)."""
    queued = {r["item_id"] for r in store.fetch(sa.select(review_tasks_table.c.item_id))}
    answered = set(adjudicated_labels(store).index)
    return {"queued": len(queued), "answered": len(queued & answered), "waiting": len(queued - answered)}


def expert_answers(
    tasks: Iterable[Mapping[str, Any]],
    project_id: int,
    reviewers: Mapping[str, str] | None,
    kind: TaskKind,
) -> list[dict[str, Any]]:
    """Rows for :func:`record_adjudications` from review-project tasks (``fields=all``): one per answer with a
    class, by a configured reviewer (``reviewers``: user id -> name; None: anyone who answers there).

    ``kind``: the kind of task whose config the experts answered in; a label is its answer (label sets: a sorted
    list, "None of these" alone ``[]``, an answer like any other).
    """
    rows = []
    for task in tasks:
        item_id = (task.get("data") or {}).get("item_id")
        for ann in task.get("annotations") or []:
            by = ann.get("completed_by")
            user_id = str(by.get("id") if isinstance(by, dict) else by)
            label = kind.answer_from_result(ann.get("result"))
            if not item_id or ann.get("was_cancelled") or label is None:
                continue
            if reviewers is not None and user_id not in reviewers:
                continue
            rows.append({"item_id": str(item_id), "label": label, "reviewer_id": user_id,
                         "reviewer_name": (reviewers or {}).get(user_id), "ls_project_id": project_id,
                         "ls_task_id": int(task["id"]), "ls_annotation_id": int(ann["id"]),
                         "answered_at": _stamp(ann.get("updated_at") or ann.get("created_at"))})  # fmt: skip
    return rows


def _stamp(value: Any) -> dt.datetime | None:
    stamp = pd.to_datetime(value, utc=True, errors="coerce")
    return None if pd.isna(stamp) else stamp.to_pydatetime()
