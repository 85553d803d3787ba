"""The label store: schema, migrations and append-only annotation versions, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
import sqlalchemy as sa

from labeling_assets.core.store.migrations import SCHEMA_VERSION
from labeling_assets.core.store.schema import (
    LabelStore,
    annotations_table,
    consensus_table,
    current_annotations_query,
    items_table,
    latest_consensus_query,
    metadata,
    schema_migrations_table,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _item(item_id: str = "a" * 64, **extra: object) -> dict[str, object]:
    return {
        "item_id": item_id,
        "uri": "/raw/x.png",
        "source_path": "file:///src/x.png",
        "n_bytes": 10,
        "ingested_at": NOW,
        "status": "active",
        **extra,
    }


def _annotation(ls_id: int, version: int, label: str | None, **extra: object) -> dict[str, object]:
    return {
        "ls_annotation_id": ls_id,
        "version": version,
        "item_id": "a" * 64,
        "labeler_id": "7",
        "label": label,
        "synced_at": NOW,
        "deleted": label is None,
        "content_hash": f"{ls_id}-{version}",
        **extra,
    }


def test_migrate_creates_every_table_and_records_the_schema_version(store: LabelStore) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    present = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= present


def test_migrate_is_idempotent(store: LabelStore) -> None:
    assert store.migrate() == []
    assert store.schema_version() == SCHEMA_VERSION


def test_an_empty_database_reports_schema_version_zero(tmp_path) -> None:
    assert LabelStore(f"sqlite:///{tmp_path / 'new.db'}").schema_version() == 0


def test_stored_annotations_cannot_be_updated(store: LabelStore) -> None:
    with store.begin() as conn:
        conn.execute(annotations_table.insert(), [_annotation(1, 1, "cat")])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.begin() as conn:
        conn.execute(annotations_table.update().values(label="dog"))
    assert store.fetch(sa.select(annotations_table.c.label)) == [{"label": "cat"}]


def test_stored_annotations_cannot_be_deleted(store: LabelStore) -> None:
    with store.begin() as conn:
        conn.execute(annotations_table.insert(), [_annotation(1, 1, "cat")])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.begin() as conn:
        conn.execute(annotations_table.delete())
    assert store.count(annotations_table) == 1


def test_a_version_number_can_be_stored_only_once_per_annotation(store: LabelStore) -> None:
    with store.begin() as conn:
        conn.execute(annotations_table.insert(), [_annotation(1, 1, "cat")])
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        conn.execute(annotations_table.insert(), [_annotation(1, 1, "dog")])
    assert store.count(annotations_table) == 1


def test_current_annotations_are_the_newest_version_and_skip_tombstones(store: LabelStore) -> None:
    with store.begin() as conn:
        conn.execute(
            annotations_table.insert(),
            [
                _annotation(1, 1, "cat"),
                _annotation(1, 2, "dog", supersedes=1),
                _annotation(2, 1, "cat", labeler_id="8"),
                _annotation(2, 2, None, labeler_id="8"),  # deleted in Label Studio
            ],
        )
    rows = store.fetch(current_annotations_query())
    assert [(r["ls_annotation_id"], r["version"], r["label"]) for r in rows] == [(1, 2, "dog")]


def test_latest_consensus_is_the_newest_version_per_item(store: LabelStore) -> None:
    with store.begin() as conn:
        conn.execute(items_table.insert(), [_item("a" * 64), _item("b" * 64)])
        conn.execute(
            consensus_table.insert(),
            [
                {"item_id": "a" * 64, "version": 1, "label": "cat", "method": "majority", "confidence": 0.6,
                 "n_annotators": 3, "computed_at": NOW},
                {"item_id": "a" * 64, "version": 2, "label": "dog", "method": "dawid_skene", "confidence": 0.9,
                 "n_annotators": 4, "computed_at": NOW},
                {"item_id": "b" * 64, "version": 1, "label": "cat", "method": "majority", "confidence": 1.0,
                 "n_annotators": 3, "computed_at": NOW},
            ],
        )
    rows = {r["item_id"][0]: (r["version"], r["label"]) for r in store.fetch(latest_consensus_query())}
    assert rows == {"a": (2, "dog"), "b": (1, "cat")}


def test_a_missing_gold_label_is_sql_null_not_json_null(store: LabelStore) -> None:
    with store.begin() as conn:
        # Both rows name the column: an executemany takes its columns from the first row.
        conn.execute(items_table.insert(), [_item("a" * 64, gold_label=None), _item("b" * 64, gold_label="3")])
    assert store.count(items_table, items_table.c.gold_label.is_(None)) == 1
    assert store.count(items_table, items_table.c.gold_label.is_not(None)) == 1


def test_the_store_repr_never_shows_a_password() -> None:
    store = LabelStore("postgresql+psycopg2://user:s3cret@db.example:5432/labels")
    assert "s3cret" not in repr(store)


def _consensus_row(item_id: str) -> dict[str, object]:
    return {
        "item_id": item_id,
        "version": 1,
        "label": "cat",
        "method": "dawid_skene",
        "confidence": 0.75,
        "n_annotators": 3,
        "computed_at": NOW,
    }


def test_migration_3_adds_consensus_probabilities_to_a_database_made_before_it(store: LabelStore) -> None:
    with store.begin() as conn:  # back to a store at version 2, before consensus had probabilities
        conn.exec_driver_sql("ALTER TABLE consensus DROP COLUMN probabilities")
        conn.execute(schema_migrations_table.delete().where(schema_migrations_table.c.version == 3))
        conn.execute(consensus_table.insert().values(_consensus_row("old")))
    assert "probabilities" not in {c["name"] for c in sa.inspect(store.engine).get_columns("consensus")}
    assert 3 in store.migrate()
    assert store.migrate() == []
    assert store.schema_version() == SCHEMA_VERSION
    with store.begin() as conn:  # the old row is kept, without probabilities; new rows store them
        conn.execute(
            consensus_table.insert().values(**_consensus_row("new"), probabilities={"cat": 0.75, "dog": 0.25})
        )
    rows = {r["item_id"]: r["probabilities"] for r in store.fetch(sa.select(consensus_table))}
    assert rows == {"old": None, "new": {"cat": 0.75, "dog": 0.25}}
