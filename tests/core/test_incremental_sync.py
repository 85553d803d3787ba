"""The incremental sync's store side (pages built by hand) and the heads the database keeps, on SQLite and
PostgreSQL."""

import datetime as dt

import sqlalchemy as sa

from labeling_assets.core.labelstudio.tasks import QueuedItem
from labeling_assets.core.store.annotation_sync import RemoteAnnotation, RemoteTask, sync_annotations
from labeling_assets.core.store.heads_schema import annotation_heads_table
from labeling_assets.core.store.incremental_sync import SyncCursor, full_sync_reason, sync_cursor, sync_scan
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    current_annotations_query,
    items_table,
    utcnow,
)

PROJECT = 3
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _project(store: LabelStore, n: int = 4) -> list[int]:
    items = [f"{i:064x}" for i in range(n)]
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": i, "uri": f"/x/{i}", "source_path": i, "n_bytes": 1, "ingested_at": utcnow(), "status": "active"}
            for i in items
        ])  # fmt: skip
    reserve_tasks(store, PROJECT, [QueuedItem(i, False, n, 1.0, None, None) for n, i in enumerate(items)], overlap=3)
    link_tasks(store, PROJECT, {item: 100 + n for n, item in enumerate(items)})
    return [100 + n for n in range(n)]


def ann(ls_id: int, task: int, label: str | None, by: str = "1") -> RemoteAnnotation:
    return RemoteAnnotation(ls_id, task, None, by, label, 2.0, None, None)


def task(task_id: int, *anns: RemoteAnnotation, created: dt.datetime = T0) -> RemoteTask:
    return RemoteTask(task_id, created.isoformat(), anns, created.isoformat())


def live(store: LabelStore) -> dict[int, object]:
    return {int(r["ls_annotation_id"]): r["label"] for r in store.fetch(current_annotations_query())}


def test_full_sync_reason() -> None:
    now = T0 + dt.timedelta(days=3)
    day = dt.timedelta(days=1)
    assert full_sync_reason(SyncCursor(None, None, None), now, every=day) == "no complete sync yet"
    synced = SyncCursor(T0, now - dt.timedelta(hours=2), None, 4)
    assert full_sync_reason(synced, now, every=day) is None
    assert full_sync_reason(synced, now, every=None, on_demand=True) == "asked for (on demand)"
    assert "periodic" in str(full_sync_reason(SyncCursor(T0, now - 2 * day, None, 4), now, every=day))
    assert full_sync_reason(SyncCursor(T0, now - 2 * day, None, 4), now, every=None) is None


def test_a_scan_writes_changed_tasks_once_ends_deleted_tasks_and_commits_the_cursor_last(store: LabelStore) -> None:
    tasks = _project(store)
    first = [ann(1, tasks[0], "a"), ann(2, tasks[0], "b", "2"), ann(3, tasks[1], "a"), ann(4, tasks[2], "c")]
    sync_annotations(store, PROJECT, first, changes_since=T0, task_number=4, snapshot_at=utcnow())
    listed: list[int] = []

    def ids() -> set[int]:
        listed.append(1)
        return {tasks[0], tasks[1], tasks[3]}  # tasks[2] was deleted in Label Studio

    later = T0 + dt.timedelta(minutes=5)
    pages = [[task(tasks[0], ann(1, tasks[0], "c"))], [task(tasks[3], ann(5, tasks[3], "b"), created=later)]]
    report = sync_scan(store, PROJECT, iter(pages), snapshot_at=utcnow(), changes_since=later, task_number=4,
                       remote_task_ids=ids)  # fmt: skip
    # 4 tasks then, 1 created since, 4 now: one was deleted, so the ids were listed.
    assert listed == [1] and report.task_ids_listed and report.tasks_gone == 1
    assert (report.new, report.updated, report.deleted) == (1, 1, 2)  # 5 new; 1 edited; 2 and 4 ended
    assert live(store) == {1: "c", 3: "a", 5: "b"}
    assert sync_cursor(store, PROJECT).changes_since == later and sync_cursor(store, PROJECT).task_number == 4
    # The same pages again (the safety overlap reads them twice): nothing written, counts agree, no listing.
    again = sync_scan(store, PROJECT, iter(pages[:1]), snapshot_at=utcnow(), changes_since=later, task_number=4,
                      remote_task_ids=ids)  # fmt: skip
    assert again.written == 0 and again.unchanged == 1 and listed == [1]


def test_a_page_older_than_a_committed_sync_is_refused(store: LabelStore) -> None:
    tasks = _project(store)
    sync_annotations(store, PROJECT, [ann(1, tasks[0], "a")], changes_since=T0, task_number=4, snapshot_at=utcnow())
    old = utcnow() - dt.timedelta(minutes=1)
    report = sync_scan(store, PROJECT, iter([[task(tasks[0])]]), snapshot_at=old, changes_since=T0, task_number=4,
                       remote_task_ids=lambda: set(tasks))  # fmt: skip
    assert report.stale and report.written == 0 and live(store) == {1: "a"}


def test_heads_follow_every_insert_and_match_the_log(store: LabelStore) -> None:
    tasks = _project(store)
    sync_annotations(store, PROJECT, [ann(i, tasks[i % 4], "a") for i in range(1, 9)])
    sync_annotations(store, PROJECT, [ann(i, tasks[i % 4], "b") for i in range(1, 9) if i % 3])  # edits, tombstones
    a = annotations_table
    latest = sa.select(a.c.ls_annotation_id, sa.func.max(a.c.version).label("v")).group_by(a.c.ls_annotation_id)
    with store.begin() as conn:
        expected = {int(r[0]): int(r[1]) for r in conn.execute(latest)}
        heads = {int(r.ls_annotation_id): int(r.version) for r in conn.execute(sa.select(annotation_heads_table))}
    assert heads == expected and len(heads) == 8
    assert live(store) == {i: "b" for i in range(1, 9) if i % 3}
