"""Store backups restore into a fresh database with every row and the same annotation log.

Both backends, real tools: SQLite's online backup API and PostgreSQL's pg_dump/pg_restore against the
server on 127.0.0.1:5432. A restore is compared with the source by the row count of every table and a
content hash of the annotation log; the sidecar written at backup time lets the restore check itself.
"""

import datetime as dt
import gzip
from pathlib import Path

import pytest
import sqlalchemy as sa

from labeling_assets.core.store import backup
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    items_table,
    labelers_table,
    utcnow,
)
from tests.conftest import PostgresDatabases


def _fill(store: LabelStore, n_items: int = 30) -> None:
    """Items, labelers and an annotation log with edits and a tombstone, as the sync writes them."""
    now = utcnow()
    with store.begin() as conn:
        conn.execute(labelers_table.insert(), [{"labeler_id": str(k), "first_seen_at": now} for k in (1, 2, 3)])
        conn.execute(
            items_table.insert(),
            [
                {"item_id": f"{i:064x}", "uri": f"/raw/{i}.png", "source_path": f"{i}.png", "n_bytes": 100 + i,
                 "ingested_at": now, "status": "active", "gold_label": "7" if i % 10 == 0 else None}
                for i in range(n_items)
            ],  # fmt: skip
        )
        rows = []
        for i in range(n_items):
            for labeler in (1, 2, 3):
                rows.append(
                    {"ls_annotation_id": i * 10 + labeler, "version": 1, "item_id": f"{i:064x}",
                     "labeler_id": str(labeler), "label": str((i + labeler) % 10), "lead_time_s": 1.5 * labeler,
                     "created_at": now, "updated_at": now, "synced_at": now, "deleted": False,
                     "content_hash": f"h{i}-{labeler}"}
                )  # fmt: skip
        conn.execute(annotations_table.insert(), rows)
        # An edit (version 2) and a tombstone (version 2, deleted): the log is append-only.
        conn.execute(
            annotations_table.insert(),
            [
                {"ls_annotation_id": 11, "version": 2, "item_id": f"{1:064x}", "labeler_id": "1", "label": "9",
                 "synced_at": now, "supersedes": 4, "deleted": False, "content_hash": "edit"},
                {"ls_annotation_id": 12, "version": 2, "item_id": f"{1:064x}", "labeler_id": "2", "label": None,
                 "synced_at": now, "supersedes": 5, "deleted": True, "content_hash": "tomb"},
            ],  # fmt: skip
        )


def _assert_same(restored: LabelStore, source: LabelStore) -> None:
    before, after = backup.store_summary(source), backup.store_summary(restored)
    assert after.tables == before.tables
    assert after.tables["annotations"] == 92 and after.tables["items"] == 30
    assert after.annotations_sha256 == before.annotations_sha256


def test_a_sqlite_backup_restores_into_a_fresh_file_with_every_row(sqlite_store: LabelStore, tmp_path: Path) -> None:
    _fill(sqlite_store)
    made = backup.backup_store(sqlite_store, tmp_path / "backups", keep=7)
    assert made.path.name.endswith(".sqlite.gz") and made.path.stat().st_size > 0
    with gzip.open(made.path) as packed:  # compressed, and a SQLite file inside
        assert packed.read(16) == b"SQLite format 3\x00"

    target_url = f"sqlite:///{tmp_path / 'restored' / 'labels.db'}"
    backup.restore_store(made.path, target_url)
    restored = LabelStore(target_url)
    _assert_same(restored, sqlite_store)
    assert restored.schema_version() == sqlite_store.schema_version()
    restored.dispose()


@pytest.mark.postgres
def test_a_postgres_dump_restores_into_a_fresh_database_with_every_row(
    postgres_store: LabelStore, pg_databases: PostgresDatabases, tmp_path: Path
) -> None:
    _fill(postgres_store)
    made = backup.backup_store(postgres_store, tmp_path / "backups", keep=7)
    assert made.path.name.endswith(".pgdump")
    assert made.path.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom (compressed) format

    target_url = pg_databases.new_url()
    backup.restore_store(made.path, target_url)
    restored = LabelStore(target_url)
    _assert_same(restored, postgres_store)
    # The append-only trigger came back with the schema: the restored log still refuses an UPDATE.
    with pytest.raises(sa.exc.DBAPIError), restored.begin() as conn:
        conn.execute(sa.update(annotations_table).values(label="0"))
    restored.dispose()


def test_only_the_newest_backups_are_kept(sqlite_store: LabelStore, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    start = dt.datetime(2025, 1, 1, 2, 0, tzinfo=dt.UTC)
    made = [backup.backup_store(sqlite_store, folder, keep=3, now=start + dt.timedelta(days=d)) for d in range(5)]
    kept = backup.list_backups(folder)
    assert kept == [m.path for m in made[-3:]]
    assert made[-1].removed == [made[1].path]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in kept] + [f"{p.name}.json" for p in kept]
    )


def test_a_restore_refuses_a_target_that_already_holds_data(sqlite_store: LabelStore, tmp_path: Path) -> None:
    _fill(sqlite_store)
    made = backup.backup_store(sqlite_store, tmp_path / "backups", keep=7)
    with pytest.raises(backup.BackupError, match="already exists: restore into a new file"):
        backup.restore_store(made.path, sqlite_store.url)


def test_a_restore_that_differs_from_the_backup_summary_fails_naming_the_table(
    sqlite_store: LabelStore, tmp_path: Path
) -> None:
    _fill(sqlite_store)
    made = backup.backup_store(sqlite_store, tmp_path / "backups", keep=7)
    sidecar = Path(f"{made.path}.json")
    sidecar.write_text(sidecar.read_text().replace('"items": 30', '"items": 31'))
    with pytest.raises(backup.BackupError, match="items: 30 rows vs 31"):
        backup.restore_store(made.path, f"sqlite:///{tmp_path / 'restored.db'}")


def test_a_sqlite_backup_does_not_restore_into_postgres(sqlite_store: LabelStore, tmp_path: Path) -> None:
    made = backup.backup_store(sqlite_store, tmp_path / "backups", keep=7)
    with pytest.raises(backup.BackupError, match="is a sqlite backup"):
        backup.restore_store(made.path, "postgresql+psycopg2://nobody@127.0.0.1:1/none")


def test_the_cli_backs_up_and_restores_with_a_verified_summary(
    sqlite_store: LabelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from labeling_assets.cli.main import main

    _fill(sqlite_store)
    monkeypatch.setenv("LABEL_STORE_URL", sqlite_store.url)
    monkeypatch.setenv("LABELING_ASSETS_HOME", str(tmp_path / "data"))
    assert main(["store", "backup", "--keep", "2"]) == 0
    (made,) = backup.list_backups(tmp_path / "data" / "backups")
    assert f"to {made}" in capsys.readouterr().out

    target = f"sqlite:///{tmp_path / 'restored.db'}"
    assert main(["store", "restore", str(made), "--to", target]) == 0
    assert "annotation log verified" in capsys.readouterr().out
    assert main(["store", "restore", str(made), "--to", target]) == 1  # never over existing data
    assert "already exists: restore into a new file" in capsys.readouterr().err
