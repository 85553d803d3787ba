"""Whole-stack backup (``store backup --all``): bundle size, per-part size, backup and restore seconds.

    python benchmarks/stack_backup.py                          # a synthetic local stack (sizes below)
    python benchmarks/stack_backup.py --annotations 1000000 --raw-files 20000
    python benchmarks/stack_backup.py --data ~/project/data    # an existing data folder (read only)

The synthetic stack is one data folder as a local deployment leaves it: a SQLite label store with
``--annotations`` rows (3 per item, 5% edited; Label Studio-shaped ids), the migrated Label Studio template's
folder (a real, empty Label Studio database: no tasks; left out when Label Studio is not installed), an MLflow store with one
registered champion whose checkpoint is ``--checkpoint-mb`` of random bytes, the repository's Dagster instance
after ``--runs`` small runs, and ``--raw-files`` raw copies of ``--raw-kb`` random bytes each (random: they do
not compress, as images do not). The restore goes into a fresh temporary folder and is timed with its checks
(SHA-256 of every part, recounts).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _store(data: Path, n: int) -> None:
    from labeling_assets.core.store.bulk import bulk_insert
    from labeling_assets.core.store.schema import LabelStore, annotations_table, items_table

    store = LabelStore(f"sqlite:///{data / 'labels.db'}")
    store.migrate()
    rng = np.random.default_rng(0)
    now = dt.datetime.now(dt.UTC)
    items = [{"item_id": f"{i:064x}", "uri": f"/raw/{i}.png", "source_path": f"{i}.png", "n_bytes": 1000,
              "ingested_at": now, "status": "active"} for i in range(n // 3 + 1)]  # fmt: skip
    rows = [{"ls_annotation_id": i, "version": 1, "ls_task_id": i // 3, "item_id": f"{i // 3:064x}",
             "labeler_id": str(int(rng.integers(0, 50))), "label": str(int(rng.integers(0, 10))),
             "lead_time_s": 7.0, "created_at": now, "updated_at": now, "synced_at": now, "supersedes": None,
             "deleted": False, "content_hash": f"{i:016x}"} for i in range(n)]  # fmt: skip
    rows += [{**rows[i], "version": 2, "content_hash": f"e{i:015x}"} for i in range(0, n, 20)]
    with store.begin() as conn:
        bulk_insert(conn, items_table, items)
        bulk_insert(conn, annotations_table, rows)
    store.dispose()


def _labelstudio(data: Path) -> None:
    from labeling_assets.local import labelstudio

    template = labelstudio.template_root()
    if template.is_dir():
        shutil.copytree(template, data / "labelstudio", ignore=shutil.ignore_patterns("ready"))


def _mlflow(data: Path, megabytes: int) -> None:
    from labeling_assets.resources.mlflow import MLflowResource

    mlflow = MLflowResource(data_dir=str(data))
    checkpoint = data.parent / "model.pt"
    checkpoint.write_bytes(os.urandom(megabytes << 20))
    with mlflow.start_run(run_name="bench"):
        version = mlflow.register_checkpoint(checkpoint, {"dataset_version": "bench"})
    mlflow.set_alias("champion", version)
    checkpoint.unlink()


def _dagster(runs: int) -> None:
    import dagster as dg

    from labeling_assets.constants import REPO_ROOT

    @dg.op
    def step() -> int:
        return 1

    @dg.job
    def bench_job() -> None:
        step()

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # not a page of run events
    with dg.DagsterInstance.from_config(str(REPO_ROOT)) as instance:
        for _ in range(runs):
            assert bench_job.execute_in_process(instance=instance, run_config=quiet).success


def _raw(data: Path, files: int, kilobytes: int) -> None:
    for i in range(files):
        name = f"{i:064x}"
        folder = data / "raw" / name[:2]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.png").write_bytes(os.urandom(kilobytes << 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="back up this data folder instead of a synthetic one")
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--checkpoint-mb", type=int, default=45)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--raw-files", type=int, default=2_000)
    parser.add_argument("--raw-kb", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stack-backup-bench-"))
    data = args.data.resolve() if args.data else work / "data"
    os.environ["LABELING_ASSETS_HOME"] = str(data)
    for name in ("LABEL_STORE_URL", "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_DATABASE_URL",
                 "MLFLOW_TRACKING_URI"):  # fmt: skip
        os.environ.pop(name, None)
    from labeling_assets.constants import REPO_ROOT

    os.environ["DAGSTER_HOME"] = str(REPO_ROOT)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    from labeling_assets.local import stack_backup

    try:
        if not args.data:
            data.mkdir(parents=True)
            _store(data, args.annotations)
            _labelstudio(data)
            _mlflow(data, args.checkpoint_mb)
            _dagster(args.runs)
            _raw(data, args.raw_files, args.raw_kb)
        made = stack_backup.backup_stack(work / "backups", keep=1, stack=stack_backup.discover(data))
        target = work / "restored"
        started = time.perf_counter()
        stack_backup.restore_stack(made.bundle, stack=stack_backup.discover(target, f"sqlite:///{target / 'labels.db'}"))
        restore_s = time.perf_counter() - started
        for part in made.manifest.parts:
            what = f"{part.bytes / 1e6:9.2f} MB" if part.status == "ok" else f"skipped ({part.reason})"
            print(f"  {part.name:<24} {what}")
        source = sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"data folder {source / 1e6:.1f} MB -> bundle {made.size / 1e6:.1f} MB; backup {made.seconds:.1f} s, "
              f"restore {restore_s:.1f} s (with its checks)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
