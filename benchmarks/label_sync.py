"""Label sync benchmark: the incremental sync (what the ``annotations`` asset does) side by side with the
full-export sync (every run exports the whole project), on a real Label Studio, at several project sizes.

For each size: a project built fast (tasks imported with their annotations attached:
``labeling_assets.local.big_project``), then, for both ways, into their own label store:
- first sync: Label Studio's full export (its own floor: printed alone) + the store write;
- idle re-sync: nothing changed in Label Studio;
- sync after 100 changes: 40 edits, 30 new annotations, 30 deletions (and, for the incremental sync, the
  deleted-task check it runs every time).
Both stores must then hold the same current annotations as Label Studio.

Starts its own Label Studio (fresh data folder, free port) through labeling_assets.local.labelstudio.

    python benchmarks/label_sync.py [--annotations 10000 100000] [--overlap 3]
"""

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from labeling_assets.core.store.annotation_sync import SyncReport, sync_annotations
from labeling_assets.core.store.incremental_sync import sync_cursor, sync_scan
from labeling_assets.core.store.schema import LabelStore, current_annotations_query, utcnow
from labeling_assets.local import labelstudio as server
from labeling_assets.local.big_project import CLASSES, build_project
from labeling_assets.resources.labelstudio import LabelStudioClient

OVERLAP_S = 60.0  # the asset's default safety overlap (CollectConfig.overlap_s)


def full_sync(client: LabelStudioClient, store: LabelStore, project_id: int) -> tuple[SyncReport, float]:
    """Today's way: export everything, diff everything. Returns the report and the export's share (s)."""
    taken = utcnow()
    t0 = time.perf_counter()
    remote = client.export_annotations(project_id)
    export_s = time.perf_counter() - t0
    return sync_annotations(store, project_id, remote, snapshot_at=taken), export_s


def asset_sync(client: LabelStudioClient, store: LabelStore, project_id: int) -> tuple[SyncReport, float]:
    """What the annotations asset does: a full export while there is no cursor, then changed tasks only."""
    cursor = sync_cursor(store, project_id)
    server_now, task_number = client.clock_and_task_count(project_id)
    taken = utcnow()
    if cursor.changes_since is None:
        t0 = time.perf_counter()
        remote = client.export_annotations(project_id)
        export_s = time.perf_counter() - t0
        report = sync_annotations(
            store, project_id, remote, snapshot_at=taken, changes_since=server_now, task_number=task_number
        )
        return report, export_s
    since = cursor.changes_since - dt.timedelta(seconds=OVERLAP_S)
    report = sync_scan(
        store, project_id, client.changed_tasks_since(project_id, since), snapshot_at=taken,
        changes_since=server_now, task_number=task_number, remote_task_ids=lambda: client.task_ids(project_id),
    )  # fmt: skip
    return report, 0.0


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def change_100(client: LabelStudioClient, store: LabelStore, users: dict[str, int], seed: int) -> None:
    """40 edits, 30 deletions and 30 new annotations on 100 distinct tasks, through the API as labelers would."""
    rng = random.Random(seed)
    by_task: dict[int, dict] = {}
    for row in store.fetch(current_annotations_query()):
        by_task.setdefault(int(row["ls_task_id"]), row)
    picked = [by_task[t] for t in rng.sample(sorted(by_task), 100)]
    for row in picked[:40]:
        client.update_annotation(int(row["ls_annotation_id"]), CLASSES[(CLASSES.index(str(row["label"])) + 1) % 10])
    for row in picked[40:70]:
        client.delete_annotation(int(row["ls_annotation_id"]))
    user_ids = list(users.values())
    for row in picked[70:]:
        client.create_annotation(int(row["ls_task_id"]), rng.choice(CLASSES), completed_by=rng.choice(user_ids), lead_time_s=3.0)


def current(store: LabelStore) -> dict[int, object]:
    return {int(r["ls_annotation_id"]): r["label"] for r in store.fetch(current_annotations_query())}


def bench_size(client: LabelStudioClient, root: Path, n: int, overlap: int) -> bool:
    stores = {}
    for way in ("full", "incremental"):
        stores[way] = LabelStore(f"sqlite:///{root / f'labels-{n}-{way}.db'}")
        stores[way].migrate()
    project = build_project(client, stores["incremental"], n, overlap=overlap)
    # The full-export store gets the same items and tasks (a copy of the rows the build wrote).
    with stores["incremental"].begin() as src, stores["full"].begin() as dst:
        for table in ("items", "tasks"):
            rows = [dict(r._mapping) for r in src.execute(sa.text(f"SELECT * FROM {table}"))]
            dst.execute(sa.table(table, *[sa.column(c) for c in rows[0]]).insert(), rows)
    print(f"\n== {project.n_annotations:,} annotations on {project.n_tasks:,} tasks (built in {project.seconds:.0f} s)")
    time.sleep(OVERLAP_S)  # the import is not the last thing that happened before the first sync
    pid = project.project_id
    (inc_first, inc_export_s), inc_first_s = timed(asset_sync, client, stores["incremental"], pid)
    (full_first, full_export_s), full_first_s = timed(full_sync, client, stores["full"], pid)
    (inc_idle, _), inc_idle_s = timed(asset_sync, client, stores["incremental"], pid)
    (full_idle, _), full_idle_s = timed(full_sync, client, stores["full"], pid)
    change_100(client, stores["incremental"], project.users, seed=n)
    (inc_changed, _), inc_changed_s = timed(asset_sync, client, stores["incremental"], pid)
    (full_changed, _), full_changed_s = timed(full_sync, client, stores["full"], pid)
    print(f"{'':28} {'incremental (asset)':>22} {'full export each run':>22}")
    print(f"{'first sync':28} {inc_first_s:>20.2f} s {full_first_s:>20.2f} s")
    print(f"{'  of which Label Studio export':28} {inc_export_s:>20.2f} s {full_export_s:>20.2f} s")
    print(f"{'idle re-sync':28} {inc_idle_s:>20.2f} s {full_idle_s:>20.2f} s")
    print(f"{'sync after 100 changes':28} {inc_changed_s:>20.2f} s {full_changed_s:>20.2f} s")
    print(
        f"rows written after the changes: incremental {inc_changed.written} "
        f"({inc_changed.new} new, {inc_changed.updated} edits, {inc_changed.deleted} tombstones; "
        f"{inc_changed.tasks_scanned} tasks read), full {full_changed.written}; idle: {inc_idle.written} / {full_idle.written}"
    )
    same = current(stores["incremental"]) == current(stores["full"])
    ratio = inc_first_s / inc_export_s  # the export inside the sync is Label Studio's own floor
    ok = same and inc_changed.written == full_changed.written == 100 and inc_idle.written == 0
    print(f"first sync / Label Studio's own export in it: {ratio:.2f}x (full-export path {full_first_s / full_export_s:.2f}x); "
          f"stores equal: {same}")
    ticks = []  # what one annotation_sensor tick costs when nothing changed (the daemon does this every 30 s)
    for _ in range(10):
        t = time.perf_counter()
        client.change_marker(pid)
        ticks.append(time.perf_counter() - t)
    print(f"sensor tick (change marker): median {sorted(ticks)[5] * 1000:.0f} ms")
    for store in stores.values():
        store.dispose()
    return ok and inc_first.written == full_first.written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=int, nargs="+", default=[10_000])
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--overlap-s", type=float, default=60.0, help="the sync's safety overlap (asset default 60)")
    args = parser.parse_args()
    globals()["OVERLAP_S"] = args.overlap_s
    if not server.is_installed():
        print(f"Label Studio is not installed at {server.ls_venv()}: run scripts/install_label_studio.sh", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="label-sync-bench-"))
    paths = server.ServerPaths(root / "labelstudio")
    info = server.start_fresh(paths, port=server.free_port(), data_folder=root)
    print(f"Label Studio {server.LS_VERSION} at {info.url}; store SQLite; overlap {args.overlap}")
    try:
        client = LabelStudioClient(info.url, server.read_token(paths), timeout_s=1800)
        results = [bench_size(client, root, n, args.overlap) for n in args.annotations]
    finally:
        server.stop(paths)
    print(f"\nall checks: {'PASS' if all(results) else 'FAIL'}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
