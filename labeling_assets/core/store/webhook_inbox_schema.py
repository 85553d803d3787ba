"""Schema migration 22: ``webhook_inbox``, the tasks Label Studio's webhooks said were touched (queries: ``webhook_inbox``).

Own ``MetaData`` (like ``answers_schema``): migration 22 creates the table on every database, fresh or old.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

webhook_inbox_table = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ls_project_id", sa.BigInteger, nullable=True),  # as the event named it (None: it did not)
    sa.Column("ls_task_id", sa.BigInteger, nullable=True),
    sa.Column("ls_annotation_id", sa.BigInteger, nullable=True),  # ANNOTATIONS_DELETED names annotations only
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_webhook_inbox_pending", "consumed_at", "id"),
)


def m022_webhook_inbox(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
