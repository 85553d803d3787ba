"""Schema migration 9: the current version of every annotation, kept by the database, and sync cursors.

``annotation_heads`` holds one row per Label Studio annotation pointing at its latest version row. A trigger
on ``annotations`` keeps it (SQLite: per row; PostgreSQL: per statement over the inserted rows), so every
writer, a sync, a restore or a test inserting rows by hand, leaves it right, and reading current votes is a
scan of one row per annotation instead of a MAX(version) GROUP BY over the whole log (15 s at 10^6 on SQLite).

``sync_cursors`` holds the incremental sync's watermark per project: the Label Studio server time before the
last complete scan of changed tasks (server time: it is compared with Label Studio's own ``updated_at``, so
our clock's skew does not matter), and when the last full reconciliation committed.

Own ``MetaData`` (like ``derived_schema``): migration 9 creates these tables on every database, fresh or
old, and nothing here imports ``schema``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

annotation_heads_table = sa.Table(
    "annotation_heads",
    metadata,
    sa.Column("ls_annotation_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("row_id", sa.Integer, nullable=False),  # annotations.id of the latest version
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("ls_task_id", sa.BigInteger, nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Index("ix_annotation_heads_task", "ls_task_id"),
)

sync_cursors_table = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("ls_project_id", sa.Integer, primary_key=True, autoincrement=False),
    # Label Studio's clock when the last complete scan began: the next scan asks for tasks updated after it
    # (minus a safety overlap). Null: no complete scan yet, the next sync is a full one.
    sa.Column("changes_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("full_synced_at", sa.DateTime(timezone=True), nullable=True),  # our clock
    sa.Column("incremental_synced_at", sa.DateTime(timezone=True), nullable=True),  # our clock
    # Label Studio's task count when that scan began: a later count below it plus the tasks created since means
    # tasks were deleted (no updated_at tells of those), and only then are all task ids listed.
    sa.Column("task_number", sa.Integer, nullable=True),
)

_COLUMNS = "ls_annotation_id, row_id, version, ls_task_id, deleted, content_hash"
_UPSERT_SET = (
    "ON CONFLICT (ls_annotation_id) DO UPDATE SET row_id = excluded.row_id, version = excluded.version, "
    "ls_task_id = excluded.ls_task_id, deleted = excluded.deleted, content_hash = excluded.content_hash "
    "WHERE excluded.version > annotation_heads.version"
)
_SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS annotations_heads AFTER INSERT ON annotations BEGIN
        INSERT INTO annotation_heads ({_COLUMNS})
        VALUES (NEW.ls_annotation_id, NEW.id, NEW.version, NEW.ls_task_id, NEW.deleted, NEW.content_hash)
        {_UPSERT_SET}; END""",
]
# Per statement with a transition table: one upsert per bulk insert (COPY included), not one per row.
_POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION annotation_heads_follow() RETURNS trigger AS $$
        BEGIN
          INSERT INTO annotation_heads ({_COLUMNS})
          SELECT DISTINCT ON (ls_annotation_id) ls_annotation_id, id, version, ls_task_id, deleted, content_hash
          FROM new_rows ORDER BY ls_annotation_id, version DESC
          {_UPSERT_SET};
          RETURN NULL;
        END; $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS annotations_heads ON annotations",
    """CREATE TRIGGER annotations_heads AFTER INSERT ON annotations REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION annotation_heads_follow()""",
]
_BACKFILL = f"""INSERT INTO annotation_heads ({_COLUMNS})
    SELECT a.ls_annotation_id, a.id, a.version, a.ls_task_id, a.deleted, a.content_hash
    FROM annotations a JOIN (SELECT ls_annotation_id, MAX(version) AS version FROM annotations
                             GROUP BY ls_annotation_id) latest
      ON a.ls_annotation_id = latest.ls_annotation_id AND a.version = latest.version"""


def m009_annotation_heads(conn: Connection) -> None:
    """Create the heads and cursors tables, fill the heads from the existing log, and install the trigger."""
    metadata.create_all(conn, checkfirst=True)
    conn.exec_driver_sql("DELETE FROM annotation_heads")  # rebuilt from the log: the trigger did not exist yet
    conn.exec_driver_sql(_BACKFILL)
    for statement in _POSTGRES if conn.dialect.name == "postgresql" else _SQLITE:
        conn.exec_driver_sql(statement)
