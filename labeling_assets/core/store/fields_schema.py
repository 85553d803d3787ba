"""Schema migration 16: the extra answer fields of each annotation version, and their consensus per dataset version.

- ``answer_fields``: one row per (annotation version, field) the labeler answered (``core/fields/spec.py``:
  a sorted list of options, or a rating), written by the sync in the same transaction as the version it belongs to
  (a change of a field alone is a new version: the content hash covers the fields). Append-only like annotations.
- ``field_consensus``: each field's per-item consensus as ``dataset_splits`` computed it for a dataset version
  (``core/fields/consensus.py``), replaced by each run of that version: what its exports carry as columns.

Own ``MetaData`` (like ``held_out_schema``): migration 16 creates both tables on every database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

answer_fields_table = sa.Table(
    "answer_fields",
    metadata,
    sa.Column("ls_annotation_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),  # the annotations.version it belongs to
    sa.Column("field", sa.String(40), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),  # sorted list of options, or an int rating
)

field_consensus_table = sa.Table(
    "field_consensus",
    metadata,
    sa.Column("dataset_version", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(40), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("n_answers", sa.Integer, nullable=False),
)


def m016_answer_fields(conn: Connection) -> None:
    """Create ``answer_fields`` and ``field_consensus``."""
    metadata.create_all(conn, checkfirst=True)


def field_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``answer_fields`` rows of annotation rows about to be written (their ``_fields``: name -> value)."""
    return [
        {"ls_annotation_id": r["ls_annotation_id"], "version": r["version"], "field": name, "value": value}
        for r in rows
        for name, value in sorted((r.get("_fields") or {}).items())
    ]
