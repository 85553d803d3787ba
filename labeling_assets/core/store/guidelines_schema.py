"""Schema migration 14: labeling guidelines as versions, where each version was pushed, and which version each
answer was given under.

- ``guideline_versions``: one row per distinct text in a row (a new version only when the text changes; going back
  to an earlier text is a new version too: the labelers saw a change). Append-only.
- ``guideline_pushes``: each time a version reached a Label Studio project's instructions, at Label Studio's clock
  (the clock its annotations' ``updated_at`` use). A version is in force from its first push.
- ``answer_guidelines``: the guideline version in force when Label Studio last created or updated each annotation
  version row (null: before any version was pushed), filled at collect time.

Own ``MetaData`` (like ``held_out_schema``): migration 14 creates the tables on every database, fresh or old.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

guideline_versions_table = sa.Table(
    "guideline_versions",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),  # 1, 2, ... in the order written
    sa.Column("content_hash", sa.String(64), nullable=False),  # sha256 of the text
    sa.Column("text", sa.Text, nullable=False),  # the Markdown as read
    sa.Column("source", sa.Text, nullable=False),  # where it was read (the settings' file)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

guideline_pushes_table = sa.Table(
    "guideline_pushes",
    metadata,
    columns.serial_id(),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),  # Label Studio's clock (its Date header)
    sa.Index("ix_guideline_pushes_version", "version"),
)

answer_guidelines_table = sa.Table(
    "answer_guidelines",
    metadata,
    sa.Column("annotation_row_id", sa.Integer, primary_key=True, autoincrement=False),  # annotations.id
    sa.Column("guideline_version", sa.Integer, nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def m014_guidelines(conn: Connection) -> None:
    """Create ``guideline_versions``, ``guideline_pushes`` and ``answer_guidelines``."""
    metadata.create_all(conn, checkfirst=True)
