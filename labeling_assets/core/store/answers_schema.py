"""Schema migration 17: the result of every stored annotation version that holds no label, and why.

Label Studio stores results it cannot use itself (a region whose ``value`` is a string: its API answers 500 and
keeps the annotation). The sync stores such a version like any other (its ``label`` null, so consensus skips
it as a vote) and keeps here what Label Studio held, whole, with the reason (``core/labelstudio/answers.py``):
nothing a labeler sent is lost, and a person can see what was wrong. Written in the sync's transaction.

Own ``MetaData`` (like ``heads_schema``): migration 17 creates the table on every database, fresh or old.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

unreadable_answers_table = sa.Table(
    "unreadable_answers",
    metadata,
    sa.Column("ls_annotation_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),  # annotations.version it explains
    sa.Column("reason", sa.String(64), nullable=False),  # an answers.UNREADABLE_* key
    sa.Column("detail", sa.Text, nullable=False),  # one bounded line
    sa.Column("result", sa.JSON(none_as_null=True), nullable=True),  # the result as Label Studio held it
)


def m017_unreadable_answers(conn: Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
