"""Current votes from the snapshot kept up to date by the append-only log, on SQLite and PostgreSQL: always equal
to the annotation heads, whatever happened to the snapshot."""

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from labeling_assets.core.labelstudio.tasks import QueuedItem
from labeling_assets.core.store.annotation_sync import RemoteAnnotation, sync_annotations
from labeling_assets.core.store.current_cache import cache_path
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks
from labeling_assets.core.store.queries import current_annotations
from labeling_assets.core.store.schema import LabelStore, current_annotations_query, items_table, utcnow

PROJECT = 5


@pytest.fixture(autouse=True)
def _cache_folder(store: LabelStore, tmp_path: Path) -> None:
    store.cache_dir = tmp_path / "store-cache"  # where PostgreSQL's snapshots go (the resource's: <data>/cache/store)


def _tasks(store: LabelStore, n: int = 3) -> list[int]:
    items = [f"{i:064x}" for i in range(n)]
    with store.begin() as conn:
        conn.execute(items_table.insert(), [
            {"item_id": i, "uri": "/x", "source_path": i, "n_bytes": 1, "ingested_at": utcnow(), "status": "active"}
            for i in items
        ])  # fmt: skip
    reserve_tasks(store, PROJECT, [QueuedItem(i, False, n, 1.0, None, None) for n, i in enumerate(items)], overlap=3)
    link_tasks(store, PROJECT, {item: 10 + n for n, item in enumerate(items)})
    return [10 + n for n in range(n)]


def _remote(labels: dict[int, object], tasks: list[int]) -> list[RemoteAnnotation]:
    return [RemoteAnnotation(i, tasks[i % len(tasks)], None, str(i % 4), label, 1.5, "2026-01-02T03:04:05Z", None)  # type: ignore[arg-type]
            for i, label in labels.items()]  # fmt: skip


def _expected(store: LabelStore) -> dict[int, object]:
    return {int(r["ls_annotation_id"]): r["label"] for r in store.fetch(current_annotations_query())}


def _read(store: LabelStore) -> dict[int, object]:
    frame = current_annotations(store)
    assert list(frame["ls_annotation_id"]) == sorted(frame["ls_annotation_id"])
    return dict(zip(frame["ls_annotation_id"].astype(int), frame["label"], strict=True))


def test_the_snapshot_follows_new_versions_and_tombstones_and_a_tampered_one_is_rebuilt(store: LabelStore) -> None:
    tasks = _tasks(store)
    sync_annotations(store, PROJECT, _remote({1: "a", 2: "b", 3: ["a", "b"], 4: "c"}, tasks))
    assert _read(store) == _expected(store) == {1: "a", 2: "b", 3: ["a", "b"], 4: "c"}
    path = cache_path(store)
    assert path is not None and path.exists()
    # Edits, a deletion and a new annotation: read from the snapshot plus the rows after it.
    sync_annotations(store, PROJECT, _remote({1: "z", 2: "b", 3: ["c"], 5: 'say "hi"\\there'}, tasks))
    assert _read(store) == _expected(store) == {1: "z", 2: "b", 3: ["c"], 5: 'say "hi"\\there'}
    frame = current_annotations(store)
    assert frame["created_at"].iloc[0] == pd.Timestamp("2026-01-02T03:04:05Z")
    # A snapshot that no longer matches the heads (a restored database, a hand-edited file) is never used.
    frame = pd.read_parquet(path)
    frame.iloc[:1].to_parquet(path)
    assert _read(store) == _expected(store)
    path.write_bytes(b"not parquet")
    assert _read(store) == _expected(store)
    with store.begin() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM annotation_heads WHERE NOT deleted")).scalar() == 4
