"""Columns that many of the store's tables declare alike, stated once.

A ``sa.Column`` belongs to one table, so each call makes new ones. A table declares with these exactly what
it declared with ``sa.Column`` before: using them changes no schema and needs no migration.
"""

from __future__ import annotations

import sqlalchemy as sa


def serial_id() -> sa.Column[int]:
    """The surrogate key of an append-only table: rows are events, numbered in the order they were written."""
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)

