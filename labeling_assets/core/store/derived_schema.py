"""Tables of derived data following its sources (schema migration 5), apart from ``schema.py`` (size limit).

They live in their own ``MetaData``: migration 1 creates the tables of ``schema.metadata``; these are
created by migration 5 on every database, fresh or old, so both end with the same schema. Nothing here
imports ``schema`` (it imports this module for the migration).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()
CONSENSUS = "consensus"  # schema.consensus_table, whose retraction columns m005 adds to older databases

# The class list as an explicit, versioned event (m005): one row per distinct list the pipeline ran with.
class_list_versions_table = sa.Table(
    "class_list_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("classes", sa.JSON, nullable=False),
    sa.Column("added", sa.JSON, nullable=False),
    sa.Column("removed", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("votes_retracted", sa.Integer, nullable=False, server_default="0", default=0),
)

# Votes that stopped counting, and why (m005); the annotation rows themselves are never touched.
vote_retractions_table = sa.Table(
    "vote_retractions",
    metadata,
    columns.serial_id(),
    sa.Column("ls_annotation_id", sa.BigInteger, nullable=False),
    sa.Column("annotation_version", sa.Integer, nullable=False),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("labeler_id", sa.String(64), nullable=False),
    sa.Column("label", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),  # class_removed | item_superseded
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("class_list_version", sa.Integer, nullable=True),
    sa.Column("retracted_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("ls_annotation_id", "annotation_version", "reason", name="uq_vote_retractions"),
    sa.Index("ix_vote_retractions_item", "item_id"),
)

# A source file whose bytes changed while its item was queued (m005): what was done about the old task.
item_conflicts_table = sa.Table(
    "item_conflicts",
    metadata,
    columns.serial_id(),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("old_item_id", sa.String(64), nullable=False),
    sa.Column("new_item_id", sa.String(64), nullable=True),  # the active item now at the source path
    sa.Column("source_path", sa.Text, nullable=True),
    sa.Column("old_ls_task_id", sa.Integer, nullable=True),
    sa.Column("live_votes", sa.Integer, nullable=False),  # votes on the old item when detected (stop counting)
    sa.Column("outcome", sa.String(32), nullable=False),  # task_marked | task_gone | reservation_withdrawn
    sa.Column("new_task_reserved", sa.Boolean, nullable=False),
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("task_marked_at", sa.DateTime(timezone=True), nullable=True),  # null until Label Studio is told
    sa.UniqueConstraint("ls_project_id", "old_item_id", name="uq_item_conflicts_item"),
)

# Items sent back to labelers because their live votes fell below what their task asked for (m005).
requeue_actions_table = sa.Table(
    "requeue_actions",
    metadata,
    columns.serial_id(),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # task_recreated | overlap_raised
    sa.Column("old_ls_task_id", sa.Integer, nullable=True),
    sa.Column("overlap_from", sa.Integer, nullable=True),
    sa.Column("overlap_to", sa.Integer, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("acted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_requeue_actions_item", "item_id"),
)


# One row per consensus_labels run that aggregated (m007): the method asked for, the one used and why, and
# the bake-off scoreboard scored on gold (None when none ran). Consensus rows carry the run_id, so the
# choice behind any stored label (and so behind any dataset version) can be looked up.
consensus_choices_table = sa.Table(
    "consensus_choices",
    metadata,
    columns.serial_id(),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("requested_method", sa.String(32), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("n_gold", sa.Integer, nullable=False),  # annotated gold items the aggregation was given
    sa.Column("scoreboard", sa.JSON(none_as_null=True), nullable=True),  # list of per-method rows
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_consensus_choices_run", "run_id"),
)


_M005_TABLES = (class_list_versions_table, vote_retractions_table, item_conflicts_table, requeue_actions_table)


def m005_derived_data_follows(conn: Connection) -> None:
    # A fresh database has the consensus columns already (m001 builds schema.consensus_table as it is now).
    columns = {c["name"] for c in sa.inspect(conn).get_columns(CONSENSUS)}
    if "retracted" not in columns:
        false = "false" if conn.dialect.name == "postgresql" else "0"
        conn.exec_driver_sql(
            f"ALTER TABLE {CONSENSUS} ADD COLUMN retracted BOOLEAN NOT NULL DEFAULT {false}"
        )
    if "retraction_reason" not in columns:
        conn.exec_driver_sql(f"ALTER TABLE {CONSENSUS} ADD COLUMN retraction_reason TEXT")
    for table in _M005_TABLES:
        table.create(conn, checkfirst=True)


def m007_consensus_choices(conn: Connection) -> None:
    consensus_choices_table.create(conn, checkfirst=True)
