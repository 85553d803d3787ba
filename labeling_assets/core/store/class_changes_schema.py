"""Schema migration 15: class schema changes (rename, merge, split) stored with the class list version they made.

One row per declared change (``core/consensus/class_schema.py``): which change, old -> new classes, the reason,
when, and what it touched then (answers naming an old class; for a split the items sent back). The annotation rows
are never touched: readers of answers read them through the mapping (``class_changes.py``). Own ``MetaData`` (like
``answers_schema``); imports nothing of the store or consensus (``schema`` imports it for the migration).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

class_schema_changes_table = sa.Table(
    "class_schema_changes",
    metadata,
    columns.serial_id(),
    sa.Column("class_list_version", sa.Integer, nullable=False),  # class_list_versions.version it came with
    sa.Column("change", sa.String(16), nullable=False),  # rename | merge | split
    sa.Column("declared", sa.Text, nullable=False),  # "merge husky,malamute->dog"
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("answers", sa.Integer, nullable=False),  # current answers naming a source then: remapped / stopped
    sa.Column("items", sa.Integer, nullable=False),  # items holding such answers
    sa.Column("item_ids", sa.JSON(none_as_null=True), nullable=True),  # a split's items, sent back for labeling
    sa.UniqueConstraint("class_list_version", "declared", name="uq_class_schema_changes"),
)


def m015_class_schema_changes(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
