"""Schema migration 21: ``alerts_sent``: which alert went out on which channel, so the same one is not posted every tick.

One row per (alert key, channel) once delivery succeeded; a failed delivery writes nothing, so the next tick tries
again. The text is kept as sent (the audit of what people were told).

Own ``MetaData`` (like ``spot_check_schema``): migration 21 creates the table on every database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

alerts_sent_table = sa.Table(
    "alerts_sent",
    metadata,
    columns.serial_id(),
    sa.Column("alert_key", sa.String(300), nullable=False),  # e.g. gold_accuracy:ann:2026-W12, run:<run id>
    sa.Column("channel", sa.String(16), nullable=False),  # webhook | email
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("alert_key", "channel", name="uq_alerts_sent_key_channel"),
)


def m021_alerts_sent(conn: Connection) -> None:
    """Create ``alerts_sent``."""
    metadata.create_all(conn, checkfirst=True)
