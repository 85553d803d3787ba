"""Store side of the Label Studio sync on SQLite and PostgreSQL (remote snapshots built by hand)."""

import datetime as dt
import logging
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from labeling_assets.core.labelstudio.tasks import select_queue
from labeling_assets.core.store.labelstudio_sync import (
    AnnotationTotals,
    RemoteAnnotation,
    SyncReport,
    annotation_totals,
    labeler_ids,
    link_tasks,
    linked_task_counts,
    newest_prelabels,
    pending_tasks,
    queue_candidates,
    reserve_tasks,
    sync_annotations,
)
from labeling_assets.core.store.schema import (
    AppendOnlyViolation,
    LabelStore,
    annotations_table,
    current_annotations_query,
    items_table,
    labelers_table,
    prelabels_table,
    utcnow,
)

PROJECT = 7


def _items(store: LabelStore, n: int = 4) -> list[str]:
    ids = [f"{i:064x}" for i in range(n)]
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {
                    "item_id": i,
                    "uri": f"/x/{i}",
                    "source_path": i,
                    "n_bytes": 1,
                    "ingested_at": utcnow(),
                    "status": "active",
                    "gold_label": "a" if n_ == 0 else None,
                }
                for n_, i in enumerate(ids)
            ],
        )
    queue = select_queue(queue_candidates(store, PROJECT), limit=10, gold_rate=0.25)
    reserve_tasks(store, PROJECT, queue, overlap=3)
    link_tasks(store, PROJECT, {item: 100 + n for n, item in enumerate(ids)})
    return ids


def _ann(
    ann_id: int, task: int, label: str | None, user: str = "1", cancelled: bool = False
) -> RemoteAnnotation:
    return RemoteAnnotation(
        ann_id, task, None, user, label, 2.5, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", cancelled
    )


def test_reserving_twice_never_duplicates_and_link_fills_task_ids(store: LabelStore) -> None:
    ids = _items(store)
    assert (
        reserve_tasks(store, PROJECT, select_queue(queue_candidates(store, PROJECT), limit=10), overlap=3)
        == 0
    )
    assert queue_candidates(store, PROJECT) == []
    assert pending_tasks(store, PROJECT) == []
    assert len(ids) == 4


def test_sync_is_exactly_once_with_versions_and_tombstones(store: LabelStore) -> None:
    _items(store)
    snapshot = [_ann(1, 100, "a"), _ann(2, 100, "b", user="2"), _ann(3, 101, "a")]
    first = sync_annotations(store, PROJECT, snapshot)
    assert (first.new, first.updated, first.deleted) == (3, 0, 0)
    assert sorted(first.new_labelers) == ["1", "2"]
    again = sync_annotations(store, PROJECT, snapshot)
    assert again.written == 0 and again.unchanged == 3
    edited = [_ann(1, 100, "c"), _ann(2, 100, "b", user="2")]  # 1 edited, 3 deleted
    third = sync_annotations(store, PROJECT, edited)
    assert (third.new, third.updated, third.deleted) == (0, 1, 1)
    assert sync_annotations(store, PROJECT, edited).written == 0
    rows = store.fetch(sa.select(annotations_table).order_by(annotations_table.c.ls_annotation_id, annotations_table.c.version))
    assert [(r["ls_annotation_id"], r["version"], r["label"], r["deleted"]) for r in rows] == [
        (1, 1, "a", False),
        (1, 2, "c", False),
        (2, 1, "b", False),
        (3, 1, "a", False),
        (3, 2, None, True),
    ]
    assert store.count(labelers_table) == 2


def test_cancelled_and_foreign_annotations_are_not_labels(store: LabelStore) -> None:
    _items(store)
    report = sync_annotations(store, PROJECT, [_ann(1, 100, None, cancelled=True), _ann(2, 999, "a")])
    assert report.written == 0 and report.unknown_task == 1


def test_stored_versions_cannot_be_rewritten(store: LabelStore) -> None:
    _items(store)
    sync_annotations(store, PROJECT, [_ann(1, 100, "a")])
    with pytest.raises((sa.exc.DBAPIError, AppendOnlyViolation)), store.begin() as conn:
        conn.execute(annotations_table.update().values(label="b"))


def test_linked_tasks_are_counted_by_gold_and_unlinked_reservations_are_not(store: LabelStore) -> None:
    _items(store)  # 4 linked tasks, one of them gold
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": "f" * 64, "source_path": "late", "n_bytes": 1,
                                             "ingested_at": utcnow(), "status": "active"}])  # fmt: skip
    reserve_tasks(store, PROJECT, select_queue(queue_candidates(store, PROJECT), limit=10), overlap=3)
    assert linked_task_counts(store, PROJECT) == {True: 1, False: 3}
    assert linked_task_counts(store, PROJECT + 1) == {}


def test_the_newest_prelabel_of_each_item_wins(store: LabelStore) -> None:
    ids = _items(store)
    old, new = utcnow().replace(year=2020), utcnow()
    with store.begin() as conn:
        conn.execute(
            prelabels_table.insert(),
            [
                {"item_id": ids[1], "model_version": "m/2", "probs": {"a": 0.7}, "computed_at": new},
                {"item_id": ids[1], "model_version": "m/1", "probs": {"a": 0.1}, "computed_at": old},
                {"item_id": ids[2], "model_version": "m/1", "probs": {"b": 0.9}, "computed_at": old},
            ],
        )
    assert newest_prelabels(store, ids[1:]) == {ids[1]: ({"a": 0.7}, "m/2"), ids[2]: ({"b": 0.9}, "m/1")}
    assert newest_prelabels(store, []) == {}


def test_annotation_totals_count_votes_items_and_every_stored_version(store: LabelStore) -> None:
    _items(store)
    sync_annotations(store, PROJECT, [_ann(1, 100, "a", user="5"), _ann(2, 100, "b", user="3"), _ann(3, 101, "a")])
    sync_annotations(store, PROJECT, [_ann(1, 100, "b", user="5"), _ann(2, 100, "b", user="3")])  # edit + delete
    assert annotation_totals(store) == AnnotationTotals(current=2, annotated_items=1, stored_versions=5)
    assert labeler_ids(store) == ["1", "3", "5"]


# --- ordering: a snapshot older than one already committed is never written ------------------------

T0 = utcnow().replace(microsecond=0)


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _history(store: LabelStore) -> list[tuple[int, int, object, bool]]:
    rows = store.fetch(
        sa.select(annotations_table).order_by(annotations_table.c.ls_annotation_id, annotations_table.c.version)
    )
    return [(r["ls_annotation_id"], r["version"], r["label"], r["deleted"]) for r in rows]


def test_a_snapshot_older_than_the_committed_one_writes_nothing(
    store: LabelStore, caplog: pytest.LogCaptureFixture
) -> None:
    _items(store)
    sync_annotations(store, PROJECT, [_ann(1, 100, "a"), _ann(2, 100, "b", user="2")], snapshot_at=_at(0))
    # A reads Label Studio at t=10 (1 and 2 as they were), B reads at t=20 after 1 was edited and 2
    # deleted; B commits first. A committing its older snapshot would revert the edit and revive 2.
    old = [_ann(1, 100, "a"), _ann(2, 100, "b", user="2")]
    new = [_ann(1, 100, "c")]
    b = sync_annotations(store, PROJECT, new, snapshot_at=_at(20))
    assert (b.updated, b.deleted, b.stale) == (1, 1, False)
    before = _history(store)
    with caplog.at_level(logging.WARNING):
        a = sync_annotations(store, PROJECT, old, snapshot_at=_at(10))
    assert a.stale and a.written == 0 and a.committed_snapshot_at == _at(20)
    assert _history(store) == before
    assert "refused a stale Label Studio snapshot" in caplog.text and "nothing written" in caplog.text
    # The same snapshot again (a duplicate poll) and a newer one are not refused.
    assert not sync_annotations(store, PROJECT, new, snapshot_at=_at(20)).stale
    assert sync_annotations(store, PROJECT, old, snapshot_at=_at(30)).written == 2


def test_watermarks_are_per_project(store: LabelStore) -> None:
    _items(store)
    sync_annotations(store, PROJECT + 1, [], snapshot_at=_at(50))
    assert sync_annotations(store, PROJECT, [_ann(1, 100, "a")], snapshot_at=_at(10)).new == 1


def test_a_stale_sync_racing_a_newer_one_waits_for_its_commit_and_then_writes_nothing(store: LabelStore) -> None:
    """B read Label Studio later and takes the sync lock first; A (older snapshot) must wait for B's commit,
    then see B's watermark and write nothing. A check-then-write outside one locked transaction lets A's
    old snapshot land after B's."""
    _items(store)
    sync_annotations(store, PROJECT, [_ann(1, 100, "a"), _ann(2, 100, "b", user="2")], snapshot_at=_at(0))
    b_locked, release_b, a_locked = threading.Event(), threading.Event(), threading.Event()
    reports: dict[str, SyncReport] = {}

    def hold_lock() -> None:
        b_locked.set()
        assert release_b.wait(30)

    def run(name: str, remote: list[RemoteAnnotation], at: dt.datetime, hook: Callable[[], None]) -> None:
        reports[name] = sync_annotations(store, PROJECT, remote, snapshot_at=at, on_locked=hook)

    b = threading.Thread(target=run, args=("b", [_ann(1, 100, "c")], _at(20), hold_lock))
    b.start()
    assert b_locked.wait(30)
    a = threading.Thread(target=run, args=("a", [_ann(1, 100, "a"), _ann(2, 100, "b", user="2")], _at(10), a_locked.set))
    a.start()
    # While B holds the lock, A cannot get past it (without the lock A would have read by now).
    assert not a_locked.wait(1.0)
    release_b.set()
    b.join(30)
    a.join(30)
    assert not reports["b"].stale and reports["b"].written == 2
    assert reports["a"].stale and reports["a"].written == 0
    assert _history(store) == [(1, 1, "a", False), (1, 2, "c", False), (2, 1, "b", False), (2, 2, None, True)]


def test_concurrent_syncs_commit_only_in_snapshot_order_and_end_at_the_newest(store: LabelStore) -> None:
    """Eight syncs of snapshots 1..8 started at once (newest threads first): the snapshots that commit do so
    in the order they were taken, the newest always commits, and each refused sync writes nothing."""
    _items(store)
    # Annotation 1 gets a label unique to each snapshot, so its version history names the committed ones.
    snapshots = {k: [_ann(1, 100, f"v{k}"), *([_ann(2, 101, "a")] if k % 2 else [])] for k in range(1, 9)}
    reports: dict[int, SyncReport] = {}
    errors: list[BaseException] = []
    go = threading.Barrier(len(snapshots))

    def run(k: int) -> None:
        try:
            go.wait(30)
            reports[k] = sync_annotations(store, PROJECT, snapshots[k], snapshot_at=_at(k))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in reversed(snapshots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(reports) == 8
    history = _history(store)
    committed = [int(str(label)[1:]) for ann_id, _, label, _ in history if ann_id == 1]
    assert committed == sorted(set(committed)) and committed[-1] == 8
    assert sorted(k for k, r in reports.items() if not r.stale) == committed
    assert all(r.written == 0 for r in reports.values() if r.stale)
    current = {r["ls_annotation_id"]: r["label"] for r in store.fetch(current_annotations_query())}
    assert current == {1: "v8"}  # snapshot 8: annotation 2 is gone
    assert len(history) == len({(r[0], r[1]) for r in history})
