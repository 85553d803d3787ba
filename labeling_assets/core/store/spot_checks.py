"""Spot checks in the label store: sampled answers (the audit of the sample), their tasks, and verdicts.

Tables are in ``spot_check_schema`` (migration 13). Verdicts are append-only; a sample row is written once and only
gets its Label Studio task filled in when pushed. The sampling rule is ``core/consensus/spot_check.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.consensus.spot_check import FIX, acceptance_counts
from labeling_assets.core.labelstudio.spot_check import read_verdict, spot_check_task
from labeling_assets.core.labelstudio.tasks import shown_object, task_data
from labeling_assets.core.store.human_loop import labeler_keys
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.core.store.spot_check_schema import spot_check_samples_table, spot_check_verdicts_table
from labeling_assets.core.tasks.kind import ItemMedia

if TYPE_CHECKING:
    from labeling_assets.core.tasks.kind import TaskKind

VERDICT_COLUMNS = ["ls_annotation_id", "item_id", "labeler_id", "verdict", "fixed_answer", "reviewer_id",
                   "reviewer_name", "answered_at", "answer_created_at"]  # fmt: skip


def sampled_ids(store: LabelStore) -> set[int]:
    """Annotation ids of every answer sampled so far."""
    t = spot_check_samples_table
    return {int(r["ls_annotation_id"]) for r in store.fetch(sa.select(t.c.ls_annotation_id))}


def record_samples(store: LabelStore, picks: pd.DataFrame, seed: int) -> int:
    """Store the picked answers (``spot_check.pick_sample``'s rows) with the seed; returns how many."""
    if picks.empty:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = [{**{str(k): v for k, v in r.items()}, "ls_annotation_id": int(r["ls_annotation_id"]), "seed": int(seed), "sampled_at": now,
             "answer_created_at": None if pd.isna(r["answer_created_at"]) else pd.Timestamp(r["answer_created_at"]).to_pydatetime()}
            for r in picks.to_dict("records")]  # fmt: skip
    with store.begin() as conn:
        conn.execute(spot_check_samples_table.insert(), rows)
    return len(rows)


def samples(store: LabelStore, *, unpushed: bool = False) -> list[dict[str, Any]]:
    """Every sampled answer's row (or only those not pushed to Label Studio yet), by annotation id."""
    t = spot_check_samples_table
    query = sa.select(t).order_by(t.c.ls_annotation_id)
    if unpushed:
        query = query.where(t.c.ls_task_id.is_(None))
    return store.fetch(query)


def mark_pushed(store: LabelStore, project_id: int, tasks: Mapping[int, int]) -> None:
    """Remember the spot-check task (``tasks``: annotation id -> Label Studio task id) of each pushed sample."""
    t = spot_check_samples_table
    now = utcnow()
    with store.begin() as conn:
        for annotation, task_id in tasks.items():
            conn.execute(t.update().where(t.c.ls_annotation_id == int(annotation))
                         .values(ls_project_id=project_id, ls_task_id=int(task_id), pushed_at=now))  # fmt: skip


def spot_check_payloads(
    store: LabelStore, rows: Iterable[Mapping[str, Any]], kind: TaskKind, data_root: Path
) -> list[dict[str, Any]]:
    """The spot-check task of each sampled answer row: its item, the labeler's name, the answer pre-drawn (the
    image's size in pixels for boxes) and why it was sampled."""
    rows = list(rows)
    if not rows:
        return []
    wanted = sorted({str(r["item_id"]) for r in rows})
    items = {r["item_id"]: r for r in store.fetch(
        sa.select(items_table.c.item_id, items_table.c.uri, items_table.c.width, items_table.c.height)
        .where(items_table.c.item_id.in_(wanted)))}  # fmt: skip
    names = labeler_keys(store)
    shown_tag, data_key = shown_object(kind)
    payloads = []
    for row in rows:
        item = items.get(str(row["item_id"])) or {}
        data = task_data(item.get("uri"), data_root, (shown_tag, data_key))
        media = str(data.get(data_key, ""))
        drawn = kind.answer_result(row["answer"], ItemMedia(media if shown_tag == "Text" else None,
                                                            item.get("width"), item.get("height")))  # fmt: skip
        why = f"draw {row['draw']:.3f} < rate {row['rate']:.2f} ({row['reason']})"
        payloads.append(spot_check_task(str(row["item_id"]), media, ls_annotation_id=int(row["ls_annotation_id"]),
                                        labeler=names.get(str(row["labeler_id"]), str(row["labeler_id"])),
                                        drawn=drawn, why=why, data_key=data_key, data=data))  # fmt: skip
    return payloads


def read_verdicts(
    tasks: Iterable[Mapping[str, Any]], project_id: int, reviewers: Mapping[str, str] | None, kind: TaskKind,
    sampled: Mapping[int, Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """(verdict rows for :func:`record_verdicts`, one line per annotation that holds none) from the spot-check
    project's tasks (``fields=all``): one per reviewer answer, by a configured reviewer (``reviewers``: user id
    -> name; None: anyone who answers there, except the labeler whose answer it is), on a task of a sampled answer
    (``sampled``: annotation id -> row)."""
    rows, problems = [], []
    for task in tasks:
        data = task.get("data") or {}
        sample = sampled.get(int(data.get("ls_annotation_id") or -1))
        for ann in task.get("annotations") or []:
            by = ann.get("completed_by")
            user_id = str(by.get("id") if isinstance(by, dict) else by)
            if ann.get("was_cancelled") or (reviewers is not None and user_id not in reviewers):
                continue
            if sample is None:
                problems.append(f"task {task.get('id')}: not a sampled answer of this store")
                break
            if user_id == str(sample["labeler_id"]):  # nobody judges their own answer
                problems.append(f"task {task.get('id')}, annotation {ann.get('id')}: the labeler reviewed their own answer")
                continue
            read = read_verdict(ann.get("result"), kind)
            if read.verdict is None:
                problems.append(f"task {task.get('id')}, annotation {ann.get('id')}: {read.problem}")
                continue
            rows.append({"ls_annotation_id": int(sample["ls_annotation_id"]), "item_id": str(sample["item_id"]),
                         "labeler_id": str(sample["labeler_id"]), "verdict": read.verdict,
                         "fixed_answer": read.answer if read.verdict == FIX else None, "reviewer_id": user_id,
                         "reviewer_name": (reviewers or {}).get(user_id), "ls_project_id": project_id,
                         "ls_task_id": int(task["id"]), "review_annotation_id": int(ann["id"]),
                         "answered_at": _stamp(ann.get("updated_at") or ann.get("created_at"))})  # fmt: skip
    return rows, problems


def record_verdicts(store: LabelStore, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Append the verdicts not stored yet in this form (a reviewer who changes their answer adds a row); returns
    the new ones."""
    t = spot_check_verdicts_table
    now = utcnow()
    with store.begin() as conn:
        seen = {(int(r[0]), r[1]) for r in conn.execute(sa.select(t.c.review_annotation_id, t.c.content_hash))}
        fresh = []
        for row in rows:
            digest = hashlib.sha256(json.dumps([row["verdict"], row["fixed_answer"]], sort_keys=True).encode()).hexdigest()
            if (int(row["review_annotation_id"]), digest) not in seen:
                seen.add((int(row["review_annotation_id"]), digest))
                fresh.append({**row, "content_hash": digest, "synced_at": now})
        if fresh:
            conn.execute(t.insert(), fresh)
    return fresh


def fix_adjudications(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The fixes among verdict rows as expert answers (``human_loop.record_adjudications``): a reviewer's correction
    counts for consensus like an expert's answer in the review project."""
    return [{"item_id": r["item_id"], "label": r["fixed_answer"], "reviewer_id": r["reviewer_id"],
             "reviewer_name": r["reviewer_name"], "ls_project_id": r["ls_project_id"], "ls_task_id": r["ls_task_id"],
             "ls_annotation_id": r["review_annotation_id"], "answered_at": r["answered_at"]}
            for r in rows if r["verdict"] == FIX]  # fmt: skip


def verdict_frame(store: LabelStore) -> pd.DataFrame:
    """Every stored verdict in the order given (:data:`VERDICT_COLUMNS`; ``answer_created_at``: when the judged
    answer was created, so a resume can leave older evidence out)."""
    v, s = spot_check_verdicts_table, spot_check_samples_table
    rows = store.fetch(
        sa.select(v.c.ls_annotation_id, v.c.item_id, v.c.labeler_id, v.c.verdict, v.c.fixed_answer, v.c.reviewer_id,
                  v.c.reviewer_name, v.c.answered_at, s.c.answer_created_at)
        .select_from(v.outerjoin(s, s.c.ls_annotation_id == v.c.ls_annotation_id))
        .order_by(v.c.id)
    )  # fmt: skip
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def acceptance(store: LabelStore) -> dict[str, tuple[int, int]]:
    """Labeler id -> (accepted, reviewed), the newest verdict per sampled answer."""
    return acceptance_counts(verdict_frame(store))


def _stamp(value: Any) -> dt.datetime | None:
    stamp = pd.to_datetime(value, utc=True, errors="coerce")
    return None if pd.isna(stamp) else stamp.to_pydatetime()
