"""Schema migration 12: the items the current dataset version had to leave out, and why.

A new item that no split can take without a near-duplicate pair crossing frozen splits (it is close to a frozen
train item and to a frozen test item that are not close to each other) is held out of the version instead of
failing its blocking check on every version after (issue 26). The version's identity is its manifest, so two
builds that hold out different items can be the same version: the held-out set lives here, replaced by each
``dataset_splits`` run, for the card, the QA report and ``labeling-assets item``.

Own ``MetaData`` (like ``prelabel_models_schema``): migration 12 creates the table on every database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

held_out_items_table = sa.Table(
    "held_out_items",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("dataset_version", sa.String(64), nullable=False),  # the version built without it
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),  # e.g. frozen_near_duplicates: [{item_id, split}]
    sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
)


def m012_held_out_items(conn: Connection) -> None:
    """Create ``held_out_items``."""
    metadata.create_all(conn, checkfirst=True)
