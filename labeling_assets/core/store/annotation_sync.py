"""Annotations from Label Studio into the store, exactly once: a full snapshot, or only the tasks that changed.

No dagster and no HTTP here: callers pass what Label Studio holds (``RemoteAnnotation`` rows, or
``RemoteTask`` pages) and these functions turn it into store rows.

Exactly-once: the remote annotations are compared with the latest stored version of each annotation
(``annotation_heads``, m009) by content hash, and only differences are written (new annotation -> version 1,
changed label -> next version that ``supersedes`` the previous, gone/cancelled -> tombstone version), in one
transaction. A re-poll or a retried run finds no difference; a crash before commit writes nothing; a
concurrent run trips the unique (ls_annotation_id, version) constraint and is retried against the new state.

Two ways in:
- :func:`sync_annotations`: the full snapshot (Label Studio's export). Anything stored and absent from it
  becomes a tombstone. First sync, and the periodic reconciliation, which reports the drift it repairs.
- :func:`sync_changed_tasks`: one page of tasks whose ``updated_at`` is after the cursor, each with all of its
  current annotations (Label Studio touches a task's ``updated_at`` on every annotation save and delete), plus
  tasks found deleted. Only annotations of those tasks are compared. The last page of a scan commits the new
  cursor (``sync_cursors.changes_since``) in the same transaction as its rows; a scan killed between pages
  leaves earlier pages committed and the cursor where it was, so the rerun scans them again and writes nothing
  twice (content hashes).

Ordering: every snapshot or page carries the time it was taken (before it was read). The transaction first
locks the project's row in ``sync_watermarks`` (SQLite: the first statement is a write, so the database write
lock is held from the start; PostgreSQL: ``SELECT ... FOR UPDATE``), so syncs of one project serialize, and a
snapshot older than the one already committed is refused: it writes nothing (``SyncReport.stale``). Without
this, an old export committed after a newer one revived deleted annotations and reverted edits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from labeling_assets.core.store.answers_schema import unreadable_answers_table
from labeling_assets.core.store.bulk import bulk_insert
from labeling_assets.core.store.fields_schema import answer_fields_table, field_rows
from labeling_assets.core.store.heads_schema import annotation_heads_table, sync_cursors_table
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    chunked,
    labelers_table,
    sync_watermarks_table,
    tasks_table,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteAnnotation:
    """One annotation as Label Studio holds it now."""

    ls_annotation_id: int
    ls_task_id: int
    item_id: str | None  # from the task data
    labeler_id: str  # Label Studio user id, as text
    label: str | list[str] | None
    lead_time_s: float | None
    created_at: str | None
    updated_at: str | None
    was_cancelled: bool = False
    task_updated_at: str | None = None  # the task's updated_at (tells drift from news in a reconciliation)
    # A result that holds no label (answers.read_answer): why, in a bounded line, and the result as it came.
    # Stored like any answer (label null, the result in ``unreadable_answers``) and skipped as a vote.
    problem: str | None = None
    detail: str = ""
    result: Any = None
    # The extra answer fields (core/fields/spec.read_fields: name -> options or rating); stored in answer_fields.
    fields: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RemoteTask:
    """One Label Studio task with every annotation it holds now (an empty tuple: it holds none)."""

    ls_task_id: int
    updated_at: str | None
    annotations: tuple[RemoteAnnotation, ...]
    created_at: str | None = None


@dataclass
class SyncReport:
    new: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    unknown_task: int = 0  # annotations of tasks that map to no stored item (not ours)
    new_labelers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    snapshot_at: dt.datetime | None = None  # when the synced snapshot was taken
    # Refused: a newer snapshot (taken at ``committed_snapshot_at``) was committed first; nothing written.
    stale: bool = False
    committed_snapshot_at: dt.datetime | None = None
    mode: str = "full"  # full | incremental
    tasks_scanned: int = 0  # incremental: changed tasks read
    tasks_gone: int = 0  # incremental: our tasks Label Studio no longer has
    task_ids_listed: bool = False  # incremental: the task count said tasks may be gone, so every id was listed
    # Reconciliation: versions written on tasks the incremental scans had already covered (their updated_at is
    # before the cursor): what incremental sync missed. 0 when it missed nothing.
    drift: int = 0
    changes_since: dt.datetime | None = None  # the cursor committed with these rows (None: not moved)
    # Answers read with no label, by reason (answers.UNREADABLE_*), among the annotations this sync read
    # (stored or already stored); a few of them (id, reason, detail) for the log and metadata.
    unreadable: dict[str, int] = field(default_factory=dict)
    unreadable_examples: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0  # annotations a labeler skipped (Label Studio's "cancelled"): not answers, not stored

    @property
    def written(self) -> int:
        return self.new + self.updated + self.deleted

    def add(self, other: SyncReport) -> None:
        """Fold one page's report into a scan's report."""
        for name in ("new", "updated", "deleted", "unchanged", "unknown_task", "tasks_scanned", "tasks_gone", "drift",
                     "cancelled"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.unreadable.items():
            self.unreadable[reason] = self.unreadable.get(reason, 0) + n
        self.unreadable_examples = (self.unreadable_examples + other.unreadable_examples)[:EXAMPLES]
        self.new_labelers = sorted({*self.new_labelers, *other.new_labelers})
        self.stale = self.stale or other.stale
        self.task_ids_listed = self.task_ids_listed or other.task_ids_listed
        self.committed_snapshot_at = other.committed_snapshot_at or self.committed_snapshot_at
        self.changes_since = other.changes_since or self.changes_since


def content_hash(label: Any, deleted: bool) -> str:
    return hashlib.sha256(json.dumps({"label": label, "deleted": deleted}, sort_keys=True).encode()).hexdigest()


TOMBSTONE_HASH = content_hash(None, True)
EXAMPLES = 5  # unreadable answers a report names (all are counted)


def answer_hash(ann: RemoteAnnotation) -> str:
    """The content hash of what an annotation holds: its label, or, when it holds none, its reason and result
    (a label is never an object, so the two never collide; an edit of an unreadable result is a new version)."""
    if ann.problem is None:  # the fields join the hash only when present: stored hashes stay valid
        return content_hash({"label": ann.label, "fields": dict(ann.fields)} if ann.fields else ann.label, False)
    return content_hash({"unreadable": ann.problem, "result": ann.result}, False)


def _ts(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back naive: every timestamp in the store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _upsert(conn: sa.Connection, table: sa.Table) -> Any:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def _lock_watermark(conn: sa.Connection, project_id: int) -> dt.datetime | None:
    """Take the project's sync lock and return the newest committed snapshot time (None: never synced).

    The insert comes first on purpose: on SQLite a write statement takes the database write lock (held to
    commit), so nothing read afterwards can be changed by another sync; on PostgreSQL the row then exists
    for ``FOR UPDATE`` to lock.
    """
    w = sync_watermarks_table
    conn.execute(
        _upsert(conn, w).values(ls_project_id=project_id).on_conflict_do_nothing(index_elements=[w.c.ls_project_id])
    )
    committed = conn.execute(sa.select(w.c.snapshot_at).where(w.c.ls_project_id == project_id).with_for_update()).scalar()
    return _aware(committed) if committed is not None else None


def _latest_versions(conn: sa.Connection, project_id: int, task_ids: Collection[int] | None) -> dict[int, dict[str, Any]]:
    """Latest stored version (tombstones included) of every annotation of the project's tasks, or of ``task_ids``."""
    h, a = annotation_heads_table, annotations_table
    stmt = sa.select(
        h.c.row_id.label("id"), h.c.ls_annotation_id, h.c.version, h.c.content_hash, h.c.deleted, h.c.ls_task_id,
        a.c.item_id, a.c.labeler_id,
    ).join(a, a.c.id == h.c.row_id)  # fmt: skip
    if task_ids is None:
        project_tasks = sa.select(tasks_table.c.ls_task_id).where(
            tasks_table.c.ls_project_id == project_id, tasks_table.c.ls_task_id.isnot(None)
        )
        return {int(r.ls_annotation_id): dict(r._mapping) for r in conn.execute(stmt.where(h.c.ls_task_id.in_(project_tasks)))}
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunked(sorted(task_ids), 900):
        out.update({int(r.ls_annotation_id): dict(r._mapping) for r in conn.execute(stmt.where(h.c.ls_task_id.in_(chunk)))})
    return out


def _task_items(conn: sa.Connection, project_id: int, task_ids: Collection[int] | None) -> dict[int, str]:
    t = tasks_table
    stmt = sa.select(t.c.ls_task_id, t.c.item_id).where(t.c.ls_project_id == project_id, t.c.ls_task_id.isnot(None))
    if task_ids is None:
        return {int(r.ls_task_id): r.item_id for r in conn.execute(stmt)}
    out: dict[int, str] = {}
    for chunk in chunked(sorted(task_ids), 900):
        out.update({int(r.ls_task_id): r.item_id for r in conn.execute(stmt.where(t.c.ls_task_id.in_(chunk)))})
    return out


@dataclass(frozen=True)
class _Scope:
    """What one transaction compares: the remote annotations, and which stored annotations they stand for."""

    remote: Sequence[RemoteAnnotation]
    task_ids: Collection[int] | None  # None: the whole project (a full snapshot)
    task_updated_at: Mapping[int, str | None]  # for drift: when each remote task last changed
    drift_before: dt.datetime | None  # reconciliation: changes on tasks updated before this are drift


def _diff(scope: _Scope, task_items: Mapping[int, str], latest: Mapping[int, dict[str, Any]], report: SyncReport) -> list[dict[str, Any]]:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()

    def missed(task_id: int | None) -> bool:
        changed = _ts(scope.task_updated_at.get(task_id)) if task_id is not None else None
        return scope.drift_before is not None and changed is not None and changed <= scope.drift_before

    for ann in scope.remote:
        item_id = task_items.get(ann.ls_task_id)
        if item_id is None:
            report.unknown_task += 1
            continue
        if ann.was_cancelled:  # a skipped task is not an answer: handled below as "absent"
            report.cancelled += 1
            continue
        if ann.problem is not None:  # no label, stored anyway (with its reason) and skipped as a vote
            report.unreadable[ann.problem] = report.unreadable.get(ann.problem, 0) + 1
            if len(report.unreadable_examples) < EXAMPLES:
                report.unreadable_examples.append(
                    {"ls_annotation_id": ann.ls_annotation_id, "reason": ann.problem, "detail": ann.detail}
                )
        elif ann.label is None:  # an in-memory snapshot's way of saying "no answer": absent
            continue
        seen.add(ann.ls_annotation_id)
        digest = answer_hash(ann)
        prev = latest.get(ann.ls_annotation_id)
        if prev is not None and prev["content_hash"] == digest:
            report.unchanged += 1
            continue
        if prev is None:
            report.new += 1
        else:
            report.updated += 1  # changed label, or re-created after a tombstone
        report.drift += missed(ann.ls_task_id)
        rows.append(
            {
                "ls_annotation_id": ann.ls_annotation_id,
                "version": (prev["version"] + 1) if prev else 1,
                "ls_task_id": ann.ls_task_id,
                "item_id": item_id,
                "labeler_id": ann.labeler_id,
                "label": ann.label,
                "lead_time_s": ann.lead_time_s,
                "created_at": _ts(ann.created_at),
                "updated_at": _ts(ann.updated_at),
                "synced_at": now,
                "supersedes": prev["id"] if prev else None,
                "deleted": False,
                "content_hash": digest,
                "_unreadable": ann if ann.problem is not None else None,
                "_fields": ann.fields,
            }
        )
    for ls_id, prev in latest.items():
        if ls_id in seen or prev["deleted"]:
            continue
        report.deleted += 1
        report.drift += missed(prev["ls_task_id"])
        rows.append(
            {
                "ls_annotation_id": ls_id,
                "version": prev["version"] + 1,
                "ls_task_id": prev["ls_task_id"],
                "item_id": prev["item_id"],
                "labeler_id": prev["labeler_id"],
                "label": None,
                "lead_time_s": None,
                "created_at": None,
                "updated_at": now,
                "synced_at": now,
                "supersedes": prev["id"],
                "deleted": True,
                "content_hash": TOMBSTONE_HASH,
                "_unreadable": None,
            }
        )
    return rows


def _write(conn: sa.Connection, rows: list[dict[str, Any]], names: Mapping[str, str], report: SyncReport) -> None:
    now = utcnow()
    unreadable = [
        {"ls_annotation_id": r["ls_annotation_id"], "version": r["version"], "reason": ann.problem,
         "detail": ann.detail, "result": ann.result}  # fmt: skip
        for r in rows
        if (ann := r.pop("_unreadable")) is not None
    ]
    fields = field_rows(rows)
    for r in rows:
        r.pop("_fields", None)
    bulk_insert(conn, annotations_table, rows)  # PostgreSQL: COPY
    bulk_insert(conn, answer_fields_table, fields)
    bulk_insert(conn, unreadable_answers_table, unreadable)
    fresh_ids = {r["labeler_id"] for r in rows if not r["deleted"]}
    known = {r[0] for r in conn.execute(sa.select(labelers_table.c.labeler_id).where(labelers_table.c.labeler_id.in_(fresh_ids)))} if fresh_ids else set()
    fresh = sorted(fresh_ids - known)
    if fresh:
        conn.execute(
            labelers_table.insert(),
            [{"labeler_id": lid, "display_name": names.get(lid), "first_seen_at": now} for lid in fresh],
        )
    report.new_labelers = fresh


def _advance_cursor(
    conn: sa.Connection, project_id: int, changes_since: dt.datetime, task_number: int | None, *, full: bool
) -> None:
    c = sync_cursors_table
    values: dict[str, Any] = {"changes_since": changes_since, "task_number": task_number}
    values["full_synced_at" if full else "incremental_synced_at"] = utcnow()
    insert = _upsert(conn, c).values(ls_project_id=project_id, **values)
    conn.execute(insert.on_conflict_do_update(index_elements=[c.c.ls_project_id], set_=values))


def _run(
    store: LabelStore,
    project_id: int,
    scope: _Scope,
    report: SyncReport,
    *,
    changes_since: dt.datetime | None,
    task_number: int | None,
    names: Mapping[str, str],
    retries: int,
    on_locked: Callable[[], None] | None,
) -> SyncReport:
    started = time.perf_counter()
    assert report.snapshot_at is not None
    for attempt in range(retries):
        attempt_report = SyncReport(
            **{**report.__dict__, "new_labelers": [], "unreadable": {}, "unreadable_examples": []}
        )
        try:
            with store.begin() as conn:
                committed = _lock_watermark(conn, project_id)
                if on_locked is not None:
                    on_locked()
                attempt_report.committed_snapshot_at = committed
                if committed is not None and report.snapshot_at < committed:
                    attempt_report.stale = True
                    log.warning(
                        "refused a stale Label Studio snapshot of project %s: taken at %s, but a newer one (taken at "
                        "%s) is already committed; nothing written",
                        project_id, report.snapshot_at.isoformat(), committed.isoformat(),
                    )  # fmt: skip
                    attempt_report.seconds = time.perf_counter() - started
                    return attempt_report
                task_items = _task_items(conn, project_id, scope.task_ids)
                latest = _latest_versions(conn, project_id, scope.task_ids)
                _write(conn, _diff(scope, task_items, latest, attempt_report), names, attempt_report)
                conn.execute(
                    sync_watermarks_table.update()
                    .where(sync_watermarks_table.c.ls_project_id == project_id)
                    .values(snapshot_at=report.snapshot_at, synced_at=utcnow())
                )
                if changes_since is not None:
                    _advance_cursor(conn, project_id, changes_since, task_number, full=report.mode == "full")
                    attempt_report.changes_since = changes_since
            attempt_report.seconds = time.perf_counter() - started
            return attempt_report
        except sa.exc.IntegrityError:
            if attempt == retries - 1:
                raise
    raise AssertionError("unreachable")


def sync_annotations(
    store: LabelStore,
    project_id: int,
    remote: Sequence[RemoteAnnotation],
    *,
    snapshot_at: dt.datetime | None = None,
    labeler_names: Mapping[str, str] | None = None,
    retries: int = 3,
    on_locked: Callable[[], None] | None = None,
    changes_since: dt.datetime | None = None,
    task_number: int | None = None,
    drift_before: dt.datetime | None = None,
) -> SyncReport:
    """Make the store's latest versions equal Label Studio's current annotations (see module docstring).

    Args:
        store: the label store.
        project_id: the Label Studio project the snapshot is of.
        remote: every annotation of the project as Label Studio held it at ``snapshot_at``.
        snapshot_at: when the snapshot was taken: a time read *before* the export request was sent.
            Default: now (only for snapshots built in memory; a snapshot read from Label Studio must pass it).
        labeler_names: display names of labelers seen for the first time.
        retries: attempts when a concurrent writer trips a unique constraint.
        on_locked: called once the project's sync lock is held, before anything is read (lets tests
            interleave two syncs deterministically).
        changes_since: Label Studio's clock before the export was read: committed as the incremental cursor.
        task_number: Label Studio's task count then (committed with the cursor).
        drift_before: a reconciliation counts changes on tasks updated before this as drift.

    Returns:
        What was written; ``stale`` when a newer snapshot had already been committed (nothing written).
    """
    updated = {a.ls_task_id: a.task_updated_at for a in remote}
    scope = _Scope(remote, None, updated, drift_before)
    report = SyncReport(snapshot_at=_aware(snapshot_at or utcnow()), mode="full")
    return _run(
        store, project_id, scope, report, changes_since=changes_since, task_number=task_number,
        names=labeler_names or {}, retries=retries, on_locked=on_locked,
    )  # fmt: skip


def sync_changed_tasks(
    store: LabelStore,
    project_id: int,
    tasks: Sequence[RemoteTask],
    *,
    snapshot_at: dt.datetime,
    gone_task_ids: Collection[int] = (),
    changes_since: dt.datetime | None = None,
    task_number: int | None = None,
    labeler_names: Mapping[str, str] | None = None,
    retries: int = 3,
) -> SyncReport:
    """Sync one page of changed tasks (each with all of its current annotations) and tasks found deleted.

    Args:
        tasks: tasks whose ``updated_at`` is after the cursor, as Label Studio holds them now.
        snapshot_at: when the scan began (our clock; orders this page against other syncs).
        gone_task_ids: Label Studio task ids of ours that Label Studio no longer has: their annotations end.
        changes_since: set on the scan's last page: the cursor to commit with these rows (Label Studio's clock
            when the scan began). None: the cursor stays (a scan killed after this page is scanned again).
    """
    remote = [a for t in tasks for a in t.annotations]
    task_ids = {t.ls_task_id for t in tasks} | set(gone_task_ids)
    scope = _Scope(remote, task_ids, {t.ls_task_id: t.updated_at for t in tasks}, None)
    report = SyncReport(
        snapshot_at=_aware(snapshot_at), mode="incremental", tasks_scanned=len(tasks), tasks_gone=len(set(gone_task_ids))
    )
    return _run(
        store, project_id, scope, report, changes_since=changes_since, task_number=task_number,
        names=labeler_names or {}, retries=retries, on_locked=None,
    )  # fmt: skip
