"""Whole-stack bundles (``store backup --all``): every part with its counts and SHA-256 in a manifest, restored
only onto an empty stack and only from an intact bundle, and never a secret in the manifest.

No server: a data folder with a real SQLite label store and the SQLite files Label Studio, MLflow and Dagster
keep (their tables, a few rows). The real servers go through the same code in
tests/integration/test_restore_drill.py.
"""

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from labeling_assets.core.store import stack_bundle as sb
from labeling_assets.core.store.backup import BackupError
from labeling_assets.core.store.schema import LabelStore, items_table, utcnow
from labeling_assets.local import stack_backup
from tests.conftest import PostgresDatabases


def _sqlite(path: Path, tables: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for name, rows in tables.items():
        conn.execute(f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY, note TEXT)')
        conn.executemany(f'INSERT INTO "{name}" (note) VALUES (?)', [(f"{name}-{i}",) for i in range(rows)])
    conn.commit()
    conn.close()


def _stack(data: Path) -> stack_backup.Stack:
    return stack_backup.discover(data, f"sqlite:///{data / 'labels.db'}")


@pytest.fixture(autouse=True)
def _no_remote_parts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # no dagster.yaml: the local instance's folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder as a local stack leaves it: label store, Label Studio, MLflow, Dagster storage, raw copies."""
    data = tmp_path / "data"
    store = LabelStore(f"sqlite:///{data / 'labels.db'}")
    store.migrate()
    with store.begin() as conn:
        conn.execute(items_table.insert(), [{"item_id": f"{i:064x}", "uri": f"/raw/{i}", "source_path": f"{i}.png",
                                             "n_bytes": 1, "ingested_at": utcnow(), "status": "active"}
                                            for i in range(3)])  # fmt: skip
    store.dispose()
    _sqlite(data / "labelstudio" / "data" / "label_studio.sqlite3", {"project": 1, "task": 4, "task_completion": 7})
    (data / "labelstudio" / "data" / "media" / "upload").mkdir(parents=True)
    (data / "labelstudio" / "data" / "media" / "upload" / "a.png").write_bytes(b"png")
    (data / "labelstudio" / "api_token").write_text("token-never-in-the-manifest")
    (data / "labelstudio" / "server.pid").write_text("123")  # this machine's, not the stack's
    _sqlite(data / "mlflow" / "mlflow.db", {"registered_models": 1, "model_versions": 2, "registered_model_aliases": 1})
    (data / "mlflow" / "artifacts" / "1").mkdir(parents=True)
    (data / "mlflow" / "artifacts" / "1" / "model.pt").write_bytes(b"weights")
    _sqlite(data / "dagster" / "storage" / "history" / "runs.db", {"runs": 5})
    (data / "raw" / "ab").mkdir(parents=True)
    (data / "raw" / "ab" / "abcd.png").write_bytes(b"raw")
    return data


def _bundle(data: Path, tmp_path: Path) -> Path:
    return stack_backup.backup_stack(tmp_path / "backups", keep=2, stack=_stack(data)).bundle


def test_a_bundle_lists_every_part_with_counts_and_hash_and_restores_onto_an_empty_folder(data: Path, tmp_path: Path) -> None:
    bundle = _bundle(data, tmp_path)
    manifest = sb.read_manifest(bundle)
    parts = {p.name: p for p in manifest.parts}
    assert {n for n, p in parts.items() if p.status == sb.OK} == {"labels", "labelstudio", "mlflow", "dagster", "raw"}
    assert parts["labels"].counts["items"] == 3 and len(parts["labels"].content_sha256) == 64
    assert parts["labelstudio"].counts["data/label_studio.sqlite3:task_completion"] == 7
    assert parts["mlflow"].counts["mlflow.db:model_versions"] == 2
    assert parts["dagster"].counts["storage/history/runs.db:runs"] == 5
    assert parts["labelstudio_export"].status == sb.SKIPPED and "no Label Studio" in parts["labelstudio_export"].reason
    assert all(p.sha256 == sb.sha256_file(bundle / p.file) for p in manifest.parts if p.status == sb.OK)
    assert (bundle.stat().st_mode & 0o777, (bundle / sb.MANIFEST).stat().st_mode & 0o777) == (0o700, 0o600)

    target = tmp_path / "wiped"
    stack_backup.restore_stack(bundle, stack=_stack(target))
    assert (target / "labelstudio" / "data" / "media" / "upload" / "a.png").read_bytes() == b"png"
    assert (target / "labelstudio" / "api_token").read_text() == "token-never-in-the-manifest"
    assert not (target / "labelstudio" / "server.pid").exists()
    assert (target / "mlflow" / "artifacts" / "1" / "model.pt").read_bytes() == b"weights"
    assert (target / "raw" / "ab" / "abcd.png").read_bytes() == b"raw"
    restored = LabelStore(f"sqlite:///{target / 'labels.db'}")
    with restored.engine.connect() as conn:
        assert len(conn.execute(items_table.select()).all()) == 3
    restored.dispose()


def test_a_part_whose_hash_differs_from_the_manifest_is_refused_and_nothing_is_restored(data: Path, tmp_path: Path) -> None:
    bundle = _bundle(data, tmp_path)
    damaged = bundle / "mlflow.tar.gz"
    damaged.write_bytes(damaged.read_bytes()[:-1] + bytes([damaged.read_bytes()[-1] ^ 1]))
    target = tmp_path / "wiped"
    with pytest.raises(BackupError, match=r"refused, nothing restored: mlflow: mlflow.tar.gz does not match the manifest's SHA-256"):
        stack_backup.restore_stack(bundle, stack=_stack(target))
    assert not target.exists()


def test_a_stack_that_is_not_empty_is_refused_and_nothing_is_restored(data: Path, tmp_path: Path) -> None:
    bundle = _bundle(data, tmp_path)
    target = tmp_path / "live"
    (target / "dagster").mkdir(parents=True)
    (target / "dagster" / "keep.txt").write_text("a live instance")
    with pytest.raises(BackupError, match=r"refused, nothing restored \(restore onto an empty stack\): dagster: .* is not empty"):
        stack_backup.restore_stack(bundle, stack=_stack(target))
    assert sorted(p.name for p in target.iterdir()) == ["dagster"]  # not even the label store came back
    with pytest.raises(BackupError, match=r"labels: .*labels.db already exists"):
        stack_backup.restore_stack(bundle, stack=_stack(data))


def test_a_folder_without_a_readable_manifest_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"no manifest.json \(not a stack backup bundle\)"):
        stack_backup.restore_stack(tmp_path, stack=_stack(tmp_path / "wiped"))
    (tmp_path / sb.MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BackupError, match=r"not a stack backup manifest"):
        stack_backup.restore_stack(tmp_path, stack=_stack(tmp_path / "wiped"))


def test_an_unreachable_database_part_is_skipped_with_its_reason_and_no_password_reaches_the_manifest(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg2://mlflow:s3cret-pw@127.0.0.1:1/mlflow")
    bundle = _bundle(data, tmp_path)
    mlflow = sb.read_manifest(bundle).part("mlflow")
    assert mlflow is not None and mlflow.status == sb.SKIPPED and mlflow.reason
    assert mlflow.source == "postgresql+psycopg2://mlflow:***@127.0.0.1:1/mlflow"
    text = (bundle / sb.MANIFEST).read_text()
    assert "s3cret-pw" not in text and "token-never-in-the-manifest" not in text


def test_only_the_newest_bundles_are_kept(data: Path, tmp_path: Path) -> None:
    made = [_bundle(data, tmp_path) for _ in range(3)]
    assert stack_backup.list_bundles(tmp_path / "backups") == made[1:]


def _tables(url: str, tables: dict[str, int]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, rows in tables.items():
            conn.exec_driver_sql(f'CREATE TABLE "{name}" (id serial PRIMARY KEY, note text)')
            for i in range(rows):
                conn.exec_driver_sql(f"INSERT INTO \"{name}\" (note) VALUES ('{name}-{i}')")
    engine.dispose()


def _point_at(monkeypatch: pytest.MonkeyPatch, home: Path, labelstudio: str, mlflow: str, dagster: str) -> None:
    monkeypatch.setenv("LABEL_STUDIO_DATABASE_URL", labelstudio)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TEST_DAGSTER_PG_URL", dagster)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("storage:\n  postgres:\n    postgres_url:\n      env: TEST_DAGSTER_PG_URL\n")


def test_on_postgresql_every_database_part_is_a_dump_restored_into_empty_databases(
    pg_databases: PostgresDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The team's databases (Label Studio, MLflow, Dagster, the store) each as a pg_dump, counted, and restored."""
    store_url = pg_databases.new_url(template=pg_databases.migrated_template())
    labelstudio, mlflow, dagster = pg_databases.new_url(), pg_databases.new_url(), pg_databases.new_url()
    _tables(labelstudio, {"task": 3, "task_completion": 5})
    _tables(mlflow, {"model_versions": 2, "registered_model_aliases": 1})
    _tables(dagster, {"runs": 4})
    _point_at(monkeypatch, tmp_path / "home", labelstudio, mlflow, dagster)
    data = tmp_path / "data"
    made = stack_backup.backup_stack(tmp_path / "backups", keep=1, raw=False,
                                     stack=stack_backup.discover(data, store_url))  # fmt: skip
    parts = {p.name: p for p in made.manifest.parts if p.status == sb.OK}
    assert {n: p.kind for n, p in parts.items()} == {
        "labels": "label-store", "labelstudio_database": "pgdump", "mlflow": "pgdump", "dagster": "pgdump"}  # fmt: skip
    assert parts["labelstudio_database"].counts == {"task": 3, "task_completion": 5}
    assert parts["dagster"].counts == {"runs": 4}

    fresh = {name: pg_databases.new_url() for name in ("store", "labelstudio", "mlflow", "dagster")}
    _point_at(monkeypatch, tmp_path / "home2", fresh["labelstudio"], fresh["mlflow"], fresh["dagster"])
    stack_backup.restore_stack(made.bundle, stack=stack_backup.discover(tmp_path / "wiped", fresh["store"]))
    engine = sa.create_engine(fresh["mlflow"])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM model_versions").scalar() == 2
    engine.dispose()
    with pytest.raises(BackupError, match=r"refused, nothing restored .*labels: .* already holds tables"):
        stack_backup.restore_stack(made.bundle, stack=stack_backup.discover(tmp_path / "wiped2", fresh["store"]))
