"""The local instance's SQLite storage, with pool slots that hold across processes.

Dagster claims a pool slot with ``SELECT ... FOR UPDATE SKIP LOCKED`` and then an ``UPDATE`` that does not
re-check the slot is free. PostgreSQL locks the row; SQLite ignores ``FOR UPDATE``, so two runs that claim at the
same moment (a CLI run and a sensor's run, two terminals) both read the one free slot and both take it, and the
"one Label Studio sync at a time" / "one training on the GPU at a time" limit of 1 silently becomes 2. Here every
claim and release of a slot runs under an exclusive ``flock`` on a file beside the index database, so the read
and the write of a claim are one step for every process on the machine. The team deployment
(docker/dagster.yaml, PostgreSQL) does not need this and does not use it. This subclasses Dagster's own SQLite
storage classes (pinned Dagster version): tests/faults/test_collect_runs.py fails if an upgrade changes them.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._core.storage.root import LocalArtifactStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData

from labeling_assets.env import data_dir

POOL_LOCK_FILE = "pools.lock"
INIT_LOCK_FILE = "init.lock"
_held = threading.local()  # per lock file, how deep this thread is inside it (flock is per open file, not re-entrant)


@contextmanager
def _exclusive(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` for every process on the machine (released when the file closes, also
    when the process dies)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class PoolSafeSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log whose pool-slot claims and releases are serialized across processes (see module doc)."""

    @contextmanager
    def _pool_lock(self) -> Iterator[None]:
        path = os.path.join(self._base_dir, POOL_LOCK_FILE)
        depth: dict[str, int] = _held.__dict__.setdefault("depth", {})
        if depth.get(path):  # re-entered in this thread (a claim initializes the pool's limit): already ours
            depth[path] += 1
            try:
                yield
            finally:
                depth[path] -= 1
            return
        with _exclusive(path):
            depth[path] = 1
            try:
                yield
            finally:
                depth[path] = 0

    def claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None) -> Any:
        with self._pool_lock():
            return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        with self._pool_lock():
            super().free_concurrency_slot_for_step(run_id, step_key)

    def free_concurrency_slots_for_run(self, run_id: str) -> None:
        with self._pool_lock():
            super().free_concurrency_slots_for_run(run_id)

    def set_concurrency_slots(self, concurrency_key: str, num: int) -> None:
        with self._pool_lock():
            super().set_concurrency_slots(concurrency_key, num)

    def initialize_concurrency_limit_to_default(self, concurrency_key: str) -> bool:
        with self._pool_lock():
            return super().initialize_concurrency_limit_to_default(concurrency_key)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> PoolSafeSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)


class PoolSafeSqliteStorage(DagsterSqliteStorage):
    """``storage: sqlite`` of dagster.yaml with :class:`PoolSafeSqliteEventLogStorage` as the event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        # Not super().__init__: it would build (and initialize) a second, plain event log storage.
        self.base_dir = base_dir
        # Under a lock: processes creating a fresh instance at the same moment (a CLI run beside `dagster dev`)
        # otherwise race on CREATE TABLE and can leave two rows in alembic_version, an instance none can open.
        os.makedirs(base_dir, exist_ok=True)
        with _exclusive(os.path.join(base_dir, INIT_LOCK_FILE)):
            self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
            self._event_log_storage = PoolSafeSqliteEventLogStorage(_event_logs_directory(base_dir))
            self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()  # type: ignore[no-untyped-call]

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> PoolSafeSqliteStorage:
        return cls.from_local(inst_data=inst_data, **in_data_folder(config_value))

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(
            __name__,
            PoolSafeSqliteEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}, default_flow_style=False),
        )


def in_data_folder(config_value: Any) -> dict[str, Any]:
    """dagster.yaml's config with a relative ``base_dir`` resolved against the data folder, not the working
    folder: the instance's storage moves with ``$LABELING_ASSETS_HOME`` like every other file the project writes."""
    config = dict(config_value)
    if config.get("base_dir") and not os.path.isabs(config["base_dir"]):
        config["base_dir"] = str(data_dir() / config["base_dir"])
    return config


class DataFolderArtifactStorage(LocalArtifactStorage):
    """``local_artifact_storage`` whose relative ``base_dir`` lies in the data folder."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> DataFolderArtifactStorage:
        return cls(inst_data=inst_data, **in_data_folder(config_value))


class DataFolderComputeLogManager(LocalComputeLogManager):
    """``compute_logs`` (the steps' stdout and stderr) whose relative ``base_dir`` lies in the data folder."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> DataFolderComputeLogManager:
        return cls(inst_data=inst_data, **in_data_folder(config_value))


__all__: Sequence[str] = [
    "DataFolderArtifactStorage",
    "DataFolderComputeLogManager",
    "PoolSafeSqliteEventLogStorage",
    "PoolSafeSqliteStorage",
]
