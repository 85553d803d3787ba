"""Label sync benchmark: pull N annotations from a real Label Studio into the label store, then re-sync.

DESIGN §8 bar: 10k annotations in < 30 s; a re-sync adds 0 rows; an older snapshot is refused (0 rows).

Starts its own Label Studio (fresh data folder, free port) through labeling_assets.local.labelstudio,
seeds it fast by importing tasks together with their annotations (``completed_by`` = simulated users;
answers from core.crowd), then times ``export_annotations`` + ``sync_annotations`` - exactly what the
``annotations`` asset does.

    python benchmarks/label_sync.py [--annotations 10000] [--overlap 3] [--store-url URL]
"""

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from labeling_assets.core.labelstudio.config import choice_result
from labeling_assets.core.labelstudio.crowd import default_crowd, plan_crowd
from labeling_assets.core.labelstudio.tasks import QueuedItem, task_payload
from labeling_assets.core.store.labelstudio_sync import link_tasks, reserve_tasks, sync_annotations
from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table, utcnow
from labeling_assets.local import labelstudio as server
from labeling_assets.resources.labelstudio import LabelStudioClient

CLASSES = [str(d) for d in range(10)]
IMPORT_BATCH = 500


def seed(client: LabelStudioClient, store: LabelStore, n_annotations: int, overlap: int) -> int:
    n_tasks = -(-n_annotations // overlap)
    crowd = default_crowd(max(overlap, 5), prefix="bench")
    user_ids = client.ensure_users([a.name for a in crowd])
    project_id = client.ensure_project(
        title=f"label-sync-bench-{int(time.time())}", classes=CLASSES, overlap=overlap
    )
    truth = {hashlib.sha256(f"bench-{i}".encode()).hexdigest(): CLASSES[i % 10] for i in range(n_tasks)}
    plan = plan_crowd(truth, crowd, CLASSES, overlap=overlap, seed=0)
    by_item: dict[str, list] = {}
    for planned in plan.annotations[:n_annotations]:
        by_item.setdefault(str(planned.item_id), []).append(planned)
    with store.begin() as conn:
        conn.execute(
            items_table.insert(),
            [
                {
                    "item_id": i,
                    "uri": f"/bench/{i}.png",
                    "source_path": f"{i}.png",
                    "n_bytes": 1,
                    "ingested_at": utcnow(),
                    "status": "active",
                }
                for i in truth
            ],
        )
    queue = [
        QueuedItem(item_id=i, is_gold=False, position=n, priority=1.0, probs=None, model_version=None)
        for n, i in enumerate(truth)
    ]
    reserve_tasks(store, project_id, queue, overlap=overlap)
    payloads = []
    for item_id in truth:
        task = task_payload(item_id, f"/bench/{item_id}.png")
        task["annotations"] = [
            {
                "result": choice_result(p.label),
                "completed_by": user_ids[p.labeler],
                "lead_time": round(p.lead_time_s, 3),
            }
            for p in by_item.get(item_id, [])
        ]
        payloads.append(task)
    started = time.perf_counter()
    for start in range(0, len(payloads), IMPORT_BATCH):
        client.import_tasks(project_id, payloads[start : start + IMPORT_BATCH])
    link_tasks(store, project_id, client.task_ids_by_item(project_id))
    print(
        f"seeded {n_tasks} tasks with {len(plan.annotations[:n_annotations])} annotations in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return project_id


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotations", type=int, default=10_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--store-url", default=None, help="label store URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    if not server.is_installed():
        print(
            f"Label Studio is not installed at {server.ls_venv()}: run scripts/install_label_studio.sh",
            file=sys.stderr,
        )
        return 2
    root = Path(tempfile.mkdtemp(prefix="label-sync-bench-"))
    paths = server.ServerPaths(root / "labelstudio")
    started = time.perf_counter()
    info = server.start_fresh(paths, port=server.free_port(), local_files_root=root)
    print(
        f"Label Studio {server.LS_VERSION} up in {time.perf_counter() - started:.1f}s at {info.url}",
        file=sys.stderr,
    )
    try:
        store = LabelStore(args.store_url or f"sqlite:///{root / 'labels.db'}")
        store.migrate()
        client = LabelStudioClient(info.url, server.read_token(paths), timeout_s=600)
        project_id = seed(client, store, args.annotations, args.overlap)

        # As the annotations asset does: the snapshot time is taken before the export is read (the watermark).
        t0 = time.perf_counter()
        taken = utcnow()
        remote = client.export_annotations(project_id)
        t1 = time.perf_counter()
        first = sync_annotations(store, project_id, remote, snapshot_at=taken)
        t2 = time.perf_counter()
        taken_again = utcnow()
        remote_again = client.export_annotations(project_id)
        again = sync_annotations(store, project_id, remote_again, snapshot_at=taken_again)
        t3 = time.perf_counter()
        stale = sync_annotations(store, project_id, remote, snapshot_at=taken)  # older than the committed one
        t4 = time.perf_counter()
        stored = store.count(annotations_table)

        print(f"backend: {store.backend}; Label Studio {server.LS_VERSION}; overlap {args.overlap}")
        print(f"annotations in Label Studio: {len(remote)}")
        print(
            f"first sync: {t2 - t0:.2f} s total (export {t1 - t0:.2f} s + store {t2 - t1:.2f} s), rows written {first.written}"
        )
        print(
            f"re-sync:    {t3 - t2:.2f} s total, rows written {again.written} (unchanged {again.unchanged})"
        )
        print(f"stale snapshot refused: {stale.stale} in {(t4 - t3) * 1000:.0f} ms, rows written {stale.written}")
        print(f"rows in annotations table: {stored}")
        # What one annotation_sensor tick costs when nothing changed (the daemon does this every 30 s).
        ticks = []
        for _ in range(10):
            t = time.perf_counter()
            client.change_marker(project_id)
            ticks.append(time.perf_counter() - t)
        print(f"sensor tick (change marker, {len(remote)} annotations): median {sorted(ticks)[5] * 1000:.0f} ms")
        ok = first.written == len(remote) == stored and again.written == 0 and stale.stale and (t2 - t0) < 30
        print(f"bar (10k < 30 s, re-sync adds 0): {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        server.stop(paths)


if __name__ == "__main__":
    sys.exit(main())
