"""Label store at scale: disk per annotation, append rate (PostgreSQL: COPY), and the read every consensus, stats
and dataset run does: current votes (annotation heads of migration 9 + the snapshot of ``current_cache``), after a
sync of 1,000 new versions, and cold (first read, no snapshot). Bar: under 3 s at 10^6 on both databases.

    python benchmarks/store_scale.py                      # 100k and 1M annotations, SQLite and PostgreSQL
    python benchmarks/store_scale.py --sizes 100000 --backends sqlite
    python benchmarks/store_scale.py --class-change "rename 3->three"   # votes read through a recorded rename

Rows are synthetic but shaped like real ones (64-hex item ids, 3 labelers per item, 5% edited once so
the latest-version query has work to do). PostgreSQL is the local server at 127.0.0.1:5432 (a throwaway
database is created and dropped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from labeling_assets.core.consensus.class_schema import parse_class_changes
from labeling_assets.core.store.bulk import bulk_insert
from labeling_assets.core.store.consensus_versions import record_class_list
from labeling_assets.core.store.queries import current_annotations
from labeling_assets.core.store.schema import LabelStore, annotations_table, sqlite_url

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def _rows(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC)
    labels = rng.integers(0, 10, n)
    rows = []
    for i in range(n):
        item = i // 3
        rows.append(
            {
                "ls_annotation_id": i,
                "version": 1,
                "ls_task_id": item,
                "item_id": f"{item:064x}",
                "labeler_id": str(int(rng.integers(0, 50))),
                "label": str(labels[i]),
                "lead_time_s": float(rng.lognormal(2, 0.5)),
                "created_at": now,
                "updated_at": now,
                "synced_at": now,
                "supersedes": None,
                "deleted": False,
                "content_hash": f"{i:016x}",
            }
        )
    edits = rng.choice(n, size=n // 20, replace=False)
    for i in edits:
        rows.append({**rows[i], "version": 2, "label": str((labels[i] + 1) % 10), "content_hash": f"e{i:015x}"})
    return rows


def _size_bytes(store: LabelStore, db_path: Path | None) -> int:
    if db_path is not None:
        return sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar())


def bench(backend: str, n: int, class_change: str | None = None) -> None:
    db_path = None
    admin = None
    name = f"bench_store_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        db_path = Path(tempfile.mkdtemp(prefix="bench-store-")) / "labels.db"
        url = sqlite_url(str(db_path))
    else:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    store = LabelStore(url)
    store.migrate()
    try:
        rows = _rows(n, seed=0)
        base = _size_bytes(store, db_path)
        t0 = time.perf_counter()
        with store.begin() as conn:  # what a sync writes (PostgreSQL: COPY), the heads trigger included
            bulk_insert(conn, annotations_table, rows)
        insert_s = time.perf_counter() - t0
        if class_change:  # issue 32.3: every read maps each answer through the recorded rename or merge
            changes = parse_class_changes(class_change)
            digits = [str(d) for d in range(10)]
            retired = {name for c in changes for name in c.retired}
            targets = [t for c in changes for t in c.targets if t not in digits]
            record_class_list(store, digits)
            record_class_list(store, [d for d in digits if d not in retired] + targets, changes=changes)
        t0 = time.perf_counter()
        current = current_annotations(store)  # the current votes every consensus / stats / dataset run reads
        cold_s = time.perf_counter() - t0  # no snapshot yet: read in full (and the snapshot written)
        size = _size_bytes(store, db_path) - base
        # A sync lands 1,000 new versions (edits of current annotations), then the next run reads the votes again.
        edits = [{**r, "version": r["version"] + 1, "label": "9", "content_hash": f"x{r['ls_annotation_id']:015x}"}
                 for r in current.head(1000)[["ls_annotation_id", "version", "ls_task_id", "item_id", "labeler_id"]]
                 .to_dict("records")]  # fmt: skip
        now = dt.datetime.now(dt.UTC)
        with store.begin() as conn:
            bulk_insert(conn, annotations_table, [{**e, "lead_time_s": 1.0, "created_at": now, "updated_at": now,
                                                   "synced_at": now, "supersedes": None, "deleted": False} for e in edits])  # fmt: skip
        t0 = time.perf_counter()
        again = current_annotations(store)
        warm_s = time.perf_counter() - t0
        assert len(again) == len(current) and (again["label"].head(1000) == "9").all()
        if class_change:  # every answer of an old class reads as its new one
            assert not again["label"].isin(set(retired)).any(), "an answer was not read through the change"
        print(
            f"{backend:>10} {n:>9,} annotations (+{len(rows) - n:,} edits): append {len(rows) / insert_s:>9,.0f} rows/s; "
            f"current votes read {warm_s:6.2f}s after a sync of 1,000 versions (cold, no snapshot: {cold_s:6.2f}s; "
            f"{len(again):,} rows); disk {size / len(rows):6.0f} B/row, {size / 1e6:8.1f} MB"
            + (f"; read through {class_change!r}" if class_change else "")
        )
    finally:
        store.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--class-change", default=None,
                        help="record this class change first (e.g. 'rename 3->three'): reads map every answer")
    args = parser.parse_args()
    for n in args.sizes:
        for backend in args.backends:
            bench(backend, n, args.class_change)


if __name__ == "__main__":
    main()
