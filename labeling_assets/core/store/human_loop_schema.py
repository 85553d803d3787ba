"""Schema migration 10: the human loop: readable labeler keys, pauses, adjudicated labels, the review queue.

- ``labelers`` gains ``username`` (Label Studio's username or email) and ``partition_key`` (that name sanitized
  for a Dagster partition key): people read names, the numeric Label Studio id stays the store's key.
- ``labeler_pauses``: append-only pause / resume events (who, why, what Label Studio allowed us to do); the
  newest event per labeler says whether they are paused. Votes a paused labeler gives after the pause count
  for nothing until a person resumes them.
- ``adjudications``: append-only expert answers from the review project; the newest per item overrides the
  crowd's consensus (method ``adjudicated``) and is truth for labeler statistics, like gold.
- ``review_tasks``: which item was queued in the review project, as which task, and why.

Own ``MetaData`` (like ``heads_schema``): migration 10 creates these tables on every database, fresh or old.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

labeler_pauses_table = sa.Table(
    "labeler_pauses",
    metadata,
    columns.serial_id(),
    sa.Column("labeler_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # pause | resume
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("actor", sa.Text, nullable=True),  # who asked (CLI user, or "gate")
    sa.Column("label_studio_effect", sa.Text, nullable=True),  # what Label Studio did (or could not do)
    sa.Column("items_reopened", sa.Integer, nullable=False, server_default="0"),  # tasks whose overlap was raised
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_labeler_pauses_labeler", "labeler_id"),
)

adjudications_table = sa.Table(
    "adjudications",
    metadata,
    columns.serial_id(),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("reviewer_id", sa.String(64), nullable=False),  # Label Studio user id of the expert
    sa.Column("reviewer_name", sa.Text, nullable=True),
    sa.Column("ls_project_id", sa.Integer, nullable=False),  # the review project
    sa.Column("ls_task_id", sa.BigInteger, nullable=True),
    sa.Column("ls_annotation_id", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),  # an unchanged answer is not stored twice
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),  # Label Studio's updated_at
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("ls_project_id", "ls_annotation_id", "content_hash", name="uq_adjudications_version"),
    sa.Index("ix_adjudications_item", "item_id"),
)

review_tasks_table = sa.Table(
    "review_tasks",
    metadata,
    columns.serial_id(),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("ls_task_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("ls_project_id", "item_id", name="uq_review_tasks_item"),
)


def m010_human_loop(conn: Connection) -> None:
    """Add the labelers' name columns and create the pause, adjudication and review-task tables."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("labelers")}
    for name in ("username", "partition_key"):
        if name not in columns:
            conn.exec_driver_sql(f"ALTER TABLE labelers ADD COLUMN {name} TEXT")
    metadata.create_all(conn, checkfirst=True)
