"""The label store's migrations, in the order they apply (numbers are assigned ahead, so not sorted).

Append new migrations at the end of ``MIGRATIONS``; never edit one that has shipped. Each migration's function
lives in its own module ``core/store/<topic>_schema.py``; the first six are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import guidelines_schema, webhook_inbox_schema
from labeling_assets.core.store.alerts_schema import m021_alerts_sent
from labeling_assets.core.store.allocation_schema import m018_allocation_decisions
from labeling_assets.core.store.answers_schema import m017_unreadable_answers
from labeling_assets.core.store.audio_schema import m019_audio_items
from labeling_assets.core.store.class_changes_schema import m015_class_schema_changes
from labeling_assets.core.store.derived_schema import m005_derived_data_follows, m007_consensus_choices
from labeling_assets.core.store.fields_schema import m016_answer_fields
from labeling_assets.core.store.heads_schema import m009_annotation_heads
from labeling_assets.core.store.held_out_schema import m012_held_out_items
from labeling_assets.core.store.human_loop_schema import m010_human_loop
from labeling_assets.core.store.lineage_schema import m008_dataset_lineage
from labeling_assets.core.store.prelabel_models_schema import m011_prelabel_models
from labeling_assets.core.store.spot_check_schema import m013_spot_checks
from labeling_assets.core.store.tables import (
    consensus_table,
    metadata,
    review_actions_table,
    schema_migrations_table,
    source_files_table,
    sync_watermarks_table,
)
from labeling_assets.core.store.tiers_schema import m020_machine_labels

_APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS annotations_no_update BEFORE UPDATE ON annotations
       BEGIN SELECT RAISE(ABORT, 'annotations are append-only: insert a new version'); END""",
    """CREATE TRIGGER IF NOT EXISTS annotations_no_delete BEFORE DELETE ON annotations
       BEGIN SELECT RAISE(ABORT, 'annotations are append-only: insert a tombstone version'); END""",
]
_APPEND_ONLY_POSTGRES = [
    """CREATE OR REPLACE FUNCTION annotations_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'annotations are append-only: insert a new version'; END;
       $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS annotations_append_only ON annotations",
    """CREATE TRIGGER annotations_append_only BEFORE UPDATE OR DELETE ON annotations
       FOR EACH ROW EXECUTE FUNCTION annotations_append_only()""",
]


def _m001_initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t is not schema_migrations_table])
    statements = _APPEND_ONLY_POSTGRES if conn.dialect.name == "postgresql" else _APPEND_ONLY_SQLITE
    for statement in statements:
        conn.exec_driver_sql(statement)


def _m002_review_actions(conn: Connection) -> None:
    # A database made before m002 lacks the table; a fresh one already has it (m001 creates every table).
    review_actions_table.create(conn, checkfirst=True)


def _m003_consensus_probabilities(conn: Connection) -> None:
    # A database made before m003 lacks the column; a fresh one already has it (m001 creates the table
    # from the current definition). ADD COLUMN of a nullable column works the same on SQLite and PostgreSQL.
    if "probabilities" in {c["name"] for c in sa.inspect(conn).get_columns(consensus_table.name)}:
        return
    column_type = consensus_table.c.probabilities.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {consensus_table.name} ADD COLUMN probabilities {column_type}")


def _m004_source_file_fingerprints(conn: Connection) -> None:
    # A database made before m004 lacks these; a fresh one already has them (m001 uses the current tables).
    columns = {c["name"] for c in sa.inspect(conn).get_columns(source_files_table.name)}
    for name in ("ctime_ns", "inode"):
        if name not in columns:
            conn.exec_driver_sql(f"ALTER TABLE {source_files_table.name} ADD COLUMN {name} BIGINT")
    if "ix_source_files_item" not in {i["name"] for i in sa.inspect(conn).get_indexes(source_files_table.name)}:
        conn.exec_driver_sql(f"CREATE INDEX ix_source_files_item ON {source_files_table.name} (item_id)")


def _m006_sync_watermarks(conn: Connection) -> None:  # a fresh database has it (m001 creates every table)
    sync_watermarks_table.create(conn, checkfirst=True)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema with append-only annotations", _m001_initial),
    Migration(2, "review_actions: what was done about review requests", _m002_review_actions),
    Migration(3, "consensus.probabilities: per-item class probabilities", _m003_consensus_probabilities),
    Migration(4, "source_files.ctime_ns, inode: content changes behind a restored mtime", _m004_source_file_fingerprints),
    Migration(5, "derived data follows its sources: consensus retractions, class list versions, vote retractions, item conflicts, requeue actions", m005_derived_data_follows),  # fmt: skip
    Migration(6, "sync_watermarks: the newest annotation snapshot committed per project", _m006_sync_watermarks),
    Migration(7, "consensus_choices: the consensus method used per run and its bake-off scoreboard", m007_consensus_choices),
    Migration(8, "dataset lineage: item perceptual hashes, dataset version tags, model trainings", m008_dataset_lineage),
    Migration(9, "annotation_heads (current version per annotation, kept by a trigger), sync_cursors", m009_annotation_heads),
    Migration(10, "human loop: labeler names, labeler_pauses, adjudications, review_tasks", m010_human_loop),
    Migration(11, "prelabel_models: each pre-label model's per-class decision thresholds", m011_prelabel_models),
    Migration(12, "held_out_items: items the current dataset version had to leave out, and why", m012_held_out_items),
    Migration(13, "spot checks: sampled answers (spot_check_samples) and reviewers' verdicts", m013_spot_checks),
    Migration(14, "guideline_versions, guideline_pushes, answer_guidelines: labeling guidelines", guidelines_schema.m014_guidelines),
    Migration(16, "answer_fields, field_consensus: extra answer fields per annotation and dataset version", m016_answer_fields),
    Migration(17, "unreadable_answers: the result and reason of each annotation version with no label", m017_unreadable_answers),
    Migration(15, "class_schema_changes: class renames, merges and splits with their class list version", m015_class_schema_changes),
    Migration(21, "alerts_sent: alerts delivered per channel (de-duplication of alarms and notices)", m021_alerts_sent),
    Migration(22, "webhook_inbox: tasks Label Studio's webhooks named, until a sync stored them", webhook_inbox_schema.m022_webhook_inbox),
    Migration(20, "machine_label_decisions, machine_label_checks: machine labels with a guarantee (tiers)", m020_machine_labels),
    Migration(18, "allocation_decisions: the allocator's audited decision per queue slot", m018_allocation_decisions),
    Migration(19, "items.duration_s, sample_rate, channels: an audio item's measures", m019_audio_items))
SCHEMA_VERSION = max(m.version for m in MIGRATIONS)  # numbers are assigned ahead: the last is not the highest
