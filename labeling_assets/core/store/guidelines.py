"""Labeling guidelines in the store: versions of the text, where each was pushed, and the version of each answer.

A version is in force from its first push to a Label Studio project (Label Studio's clock) until the next version's
first push; an answer was given under the version in force when Label Studio last created or updated it (its
``updated_at``, else ``created_at``). Tables: ``guidelines_schema`` (migration 14).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from labeling_assets.core.store.guidelines_schema import (
    answer_guidelines_table,
    guideline_pushes_table,
    guideline_versions_table,
)
from labeling_assets.core.store.heads_schema import annotation_heads_table
from labeling_assets.core.store.schema import LabelStore, annotations_table, utcnow


@dataclass(frozen=True)
class GuidelineVersion:
    version: int
    content_hash: str
    text: str
    source: str
    created_at: dt.datetime


def text_hash(text: str) -> str:
    """sha256 of the guideline text (UTF-8) as read: any change, whitespace included, is a new version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def latest_guideline(store: LabelStore) -> GuidelineVersion | None:
    """The newest guideline version, None before the first."""
    rows = store.fetch(sa.select(guideline_versions_table).order_by(guideline_versions_table.c.version.desc()).limit(1))
    return GuidelineVersion(**rows[0]) if rows else None


def guideline_versions(store: LabelStore) -> list[GuidelineVersion]:
    """Every version, oldest first."""
    rows = store.fetch(sa.select(guideline_versions_table).order_by(guideline_versions_table.c.version))
    return [GuidelineVersion(**r) for r in rows]


def record_guideline_text(
    store: LabelStore, text: str, source: str, *, now: dt.datetime | None = None
) -> tuple[GuidelineVersion, bool]:
    """The version holding ``text``: the newest one when its text is the same, else a new version (returned with
    True). A text equal to an older, replaced version is still a new version: labelers see it change back."""
    digest = text_hash(text)
    with store.begin() as conn:
        newest = conn.execute(
            sa.select(guideline_versions_table).order_by(guideline_versions_table.c.version.desc()).limit(1)
        ).mappings().first()
        if newest is not None and newest["content_hash"] == digest:
            return GuidelineVersion(**newest), False
        version = GuidelineVersion(
            version=(int(newest["version"]) if newest is not None else 0) + 1,
            content_hash=digest,
            text=text,
            source=source,
            created_at=now or utcnow(),
        )
        conn.execute(sa.insert(guideline_versions_table).values(**version.__dict__))
    return version, True


def record_push(store: LabelStore, version: int, ls_project_id: int, pushed_at: dt.datetime) -> None:
    """``version`` reached project ``ls_project_id``'s instructions at ``pushed_at`` (Label Studio's clock)."""
    with store.begin() as conn:
        conn.execute(
            sa.insert(guideline_pushes_table).values(version=version, ls_project_id=ls_project_id, pushed_at=pushed_at)
        )


def pushed_projects(store: LabelStore, version: int) -> set[int]:
    """The projects ``version`` was pushed to."""
    rows = store.fetch(
        sa.select(guideline_pushes_table.c.ls_project_id).where(guideline_pushes_table.c.version == version)
    )
    return {int(r["ls_project_id"]) for r in rows}


def versions_in_force(store: LabelStore) -> list[tuple[int, dt.datetime]]:
    """(version, first pushed at) of every pushed version, in the order they came into force."""
    first = sa.func.min(guideline_pushes_table.c.pushed_at)
    rows = store.fetch(
        sa.select(guideline_pushes_table.c.version, first.label("since")).group_by(guideline_pushes_table.c.version)
    )
    return sorted(((int(r["version"]), _utc(r["since"])) for r in rows), key=lambda vs: (vs[1], vs[0]))


def version_at(stamps: Sequence[dt.datetime | None], in_force: Sequence[tuple[int, dt.datetime]]) -> list[int | None]:
    """The version in force at each stamp (``in_force``: :func:`versions_in_force`); None before the first push or
    for an unknown stamp. A stamp equal to a push time is under the pushed version."""
    starts = [since for _, since in in_force]
    out: list[int | None] = []
    for stamp in stamps:
        at = bisect.bisect_right(starts, _utc(stamp)) if stamp is not None else 0
        out.append(in_force[at - 1][0] if at else None)
    return out


def record_answer_guidelines(store: LabelStore, *, now: dt.datetime | None = None) -> int:
    """Record the guideline version of every annotation version row not yet recorded; returns how many.

    Nothing is recorded before a version was first pushed: the assignment goes by Label Studio's timestamps, not by
    when this runs, so rows recorded later get the same version. New rows are those above the highest row recorded
    (annotation rows are numbered in the order written, and one collect writes at a time: its pool).
    """
    in_force = versions_in_force(store)
    if not in_force:
        return 0
    a = annotations_table.c
    done = sa.select(sa.func.coalesce(sa.func.max(answer_guidelines_table.c.annotation_row_id), 0)).scalar_subquery()
    rows = store.fetch(sa.select(a.id, a.created_at, a.updated_at).where(a.id > done).order_by(a.id))
    if not rows:
        return 0
    versions = version_at([r["updated_at"] or r["created_at"] for r in rows], in_force)
    stamp = now or utcnow()
    with store.begin() as conn:
        conn.execute(
            sa.insert(answer_guidelines_table),
            [
                {"annotation_row_id": r["id"], "guideline_version": v, "recorded_at": stamp}
                for r, v in zip(rows, versions, strict=True)
            ],
        )
    return len(rows)


def current_answer_guidelines(store: LabelStore) -> pd.Series:
    """ls_annotation_id -> the guideline version its current version was given under (recorded rows only; None:
    before any version)."""
    h, g = annotation_heads_table.c, answer_guidelines_table.c
    rows = store.fetch(
        sa.select(h.ls_annotation_id, g.guideline_version).join(
            answer_guidelines_table, g.annotation_row_id == h.row_id
        )
    )
    return pd.Series({int(r["ls_annotation_id"]): r["guideline_version"] for r in rows}, dtype=object)


def _utc(stamp: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes (stored in UTC): make every stamp aware before comparing."""
    if isinstance(stamp, str):
        stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
