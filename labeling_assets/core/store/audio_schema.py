"""Schema migration 19: an audio item's measures on its items row (duration_s, sample_rate, channels).

A fresh database already has them (m001 creates ``items`` from the current definition); an older one gets the
nullable columns added, NULL for the items it holds (images and texts have none).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store.tables import items_table

AUDIO_COLUMNS = ("duration_s", "sample_rate", "channels")


def m019_audio_items(conn: Connection) -> None:
    """Add ``items.duration_s``, ``sample_rate`` and ``channels`` where they are missing."""
    present = {c["name"] for c in sa.inspect(conn).get_columns(items_table.name)}
    for name in AUDIO_COLUMNS:
        if name not in present:
            column_type = items_table.c[name].type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {items_table.name} ADD COLUMN {name} {column_type}")
