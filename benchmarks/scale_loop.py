"""A synthetic operation through the store-side stages, at growing sizes: time and peak memory per stage, and how
each grows (bar: at most linearly, i.e. time ratio / size ratio <= ~1).

Stages, each what the pipeline runs (no Label Studio, no Dagster):
  sync_first    first sync of every annotation (full snapshot diff + append)
  sync_full     the reconciliation: the whole snapshot again, 1% of the annotations edited
  sync_changed  the incremental sync of another 1% edited, as changed-task pages
  votes_cold    current votes, first read: every current row (and the snapshot written)
  read_votes    current votes after the incremental sync: the snapshot + the rows after it (every later run)
  consensus     Dawid-Skene over every item + the consensus versions written
  stats         labeler statistics of every labeler in one pass (what the single-run backfill computes)
  splits        frozen stratified split assignment of every consensus-labeled item

    python benchmarks/scale_loop.py                                  # 10^4 and 10^5 items, 3 votes each, SQLite
    python benchmarks/scale_loop.py --items 333334 --labelers 500 --stages stats   # 500 labelers x 10^6 votes
    python benchmarks/scale_loop.py --store postgres                 # the local server (throwaway database)
"""

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from labeling_assets.core.consensus.leaderboard import labeler_reports
from labeling_assets.core.consensus.methods import aggregate_full
from labeling_assets.core.dataset.splits import assign_splits
from labeling_assets.core.store.annotation_sync import (
    RemoteAnnotation,
    RemoteTask,
    sync_annotations,
    sync_changed_tasks,
)
from labeling_assets.core.store.consensus_versions import write_consensus
from labeling_assets.core.store.queries import load_quality_inputs, load_votes
from labeling_assets.core.store.schema import LabelStore, items_table, tasks_table, utcnow

CLASSES = [str(k) for k in range(10)]
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
STAGES = ["sync_first", "sync_full", "votes_cold", "sync_changed", "read_votes", "consensus", "stats", "splits"]
PROJECT = 1


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``fn``; return its value, seconds, and peak RSS above the start (MB, sampled every 20 ms)."""
    start, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    return value, seconds, max(peak[0], rss_mb()) - start


def snapshot(n_items: int, votes: int, labelers: int, seed: int) -> list[RemoteAnnotation]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 10, n_items)
    out = []
    for item in range(n_items):
        who = rng.choice(labelers, size=votes, replace=False)
        for k in range(votes):
            label = truth[item] if rng.random() < 0.8 else rng.integers(0, 10)
            out.append(RemoteAnnotation(item * votes + k + 1, item + 1, None, str(who[k]), CLASSES[label],
                                        float(rng.lognormal(2, 0.5)), "2026-01-05T10:00:00Z", "2026-01-05T10:00:00Z"))  # fmt: skip
    return out


def edited(remote: list[RemoteAnnotation], share: float, seed: int) -> tuple[list[RemoteAnnotation], set[int]]:
    rng = np.random.default_rng(seed)
    picked = set(rng.choice(len(remote), size=max(1, int(len(remote) * share)), replace=False).tolist())
    out = list(remote)
    for i in picked:
        a = out[i]
        out[i] = RemoteAnnotation(a.ls_annotation_id, a.ls_task_id, None, a.labeler_id,
                                  CLASSES[(CLASSES.index(str(a.label)) + 1) % 10], a.lead_time_s, a.created_at, a.updated_at)  # fmt: skip
    return out, {out[i].ls_task_id for i in picked}


def prepare_store(kind: str, n_items: int) -> tuple[LabelStore, Callable[[], None]]:
    if kind == "sqlite":
        store = LabelStore(f"sqlite:///{Path(tempfile.mkdtemp(prefix='scale-loop-')) / 'labels.db'}")
        cleanup: Callable[[], None] = store.dispose
    else:
        name = f"scale_loop_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        store = LabelStore(admin.url.set(database=name).render_as_string(hide_password=False))

        def cleanup() -> None:
            store.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

    store.migrate()
    now = utcnow()
    ids = [f"{i + 1:064x}" for i in range(n_items)]
    with store.begin() as conn:
        for start in range(0, n_items, 20_000):
            chunk = ids[start : start + 20_000]
            conn.execute(items_table.insert(), [{"item_id": i, "uri": f"/s/{i}", "source_path": i, "n_bytes": 1,
                                                 "ingested_at": now, "status": "active"} for i in chunk])  # fmt: skip
            conn.execute(tasks_table.insert(), [{"item_id": i, "ls_project_id": PROJECT, "ls_task_id": start + n + 1,
                                                 "required_annotations": 3, "is_gold": False} for n, i in enumerate(chunk)])  # fmt: skip
    return store, cleanup


def run_size(n_items: int, args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    remote = snapshot(n_items, args.votes, args.labelers, seed=n_items)
    store, cleanup = prepare_store(args.store, n_items)
    out: dict[str, tuple[float, float]] = {}
    state: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], Any]) -> None:
        if name in args.stages:
            state[name], seconds, peak = measured(fn)
            out[name] = (seconds, peak)
        else:
            state[name] = fn() if name in ("sync_first", "consensus") else None

    try:
        stage("sync_first", lambda: sync_annotations(store, PROJECT, remote))
        full, _ = edited(remote, 0.01, seed=1)
        stage("sync_full", lambda: sync_annotations(store, PROJECT, full))
        stage("votes_cold", lambda: load_votes(store, CLASSES))
        changed, tasks = edited(full, 0.01, seed=2)
        by_task: dict[int, list[RemoteAnnotation]] = {}
        for a in changed:
            if a.ls_task_id in tasks:
                by_task.setdefault(a.ls_task_id, []).append(a)
        pages = [RemoteTask(t, None, tuple(anns)) for t, anns in sorted(by_task.items())]
        stage("sync_changed", lambda: sync_changed_tasks(store, PROJECT, pages, snapshot_at=utcnow()))
        stage("read_votes", lambda: load_votes(store, CLASSES))

        def consensus() -> Any:
            votes = load_votes(store, CLASSES).votes.frame
            result = aggregate_full(votes, "dawid_skene", classes=CLASSES)
            write_consensus(store, result.labels, "dawid_skene", "bench")
            return result.labels

        stage("consensus", consensus)

        def stats() -> Any:
            inputs = load_quality_inputs(store, CLASSES)
            return labeler_reports(inputs, CLASSES, trend_weeks=8)

        stage("stats", stats)
        labels = state["consensus"]
        stage("splits", lambda: assign_splits(labels[["item_id", "label"]]))
        if "stats" in out:
            print(f"  ({len(state['stats'])} labelers)")
    finally:
        cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--votes", type=int, default=3, help="annotations per item")
    parser.add_argument("--labelers", type=int, default=50)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=STAGES)
    args = parser.parse_args()
    results = {}
    for n in args.items:
        print(f"{n:,} items, {n * args.votes:,} annotations, {args.labelers} labelers, {args.store} ...", flush=True)
        results[n] = run_size(n, args)
        for name, (seconds, peak) in results[n].items():
            print(f"  {name:<13} {seconds:8.2f} s   peak +{peak:7.0f} MB", flush=True)
    if len(args.items) > 1:
        small, big = args.items[0], args.items[-1]
        size = big / small
        print(f"\ngrowth {small:,} -> {big:,} items (x{size:g}): time ratio / size ratio (<= 1: at most linear)")
        for name in results[big]:
            ratio = results[big][name][0] / max(results[small][name][0], 1e-9) / size
            print(f"  {name:<13} x{results[big][name][0] / max(results[small][name][0], 1e-9):6.1f}  -> {ratio:5.2f}")


if __name__ == "__main__":
    main()
