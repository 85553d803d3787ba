"""Tables of dataset lineage (schema migration 8), apart from ``schema.py`` (size limit).

- ``item_phashes``: the perceptual hash of each item's bytes, computed at ingest (NULL with the reason when
  its copy could not be decoded), for near-duplicate groups.
- ``dataset_version_tags``: names a person gave dataset versions (``labeling-assets dataset tag V NAME``).
- ``model_trainings``: which model (MLflow run, registered version) was trained on which dataset version, so
  an item's history can name the models that saw it without asking MLflow.

Their own ``MetaData`` (like ``derived_schema``): migration 8 creates them on every database, fresh or old.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

item_phashes_table = sa.Table(
    "item_phashes",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("phash", sa.String(16), nullable=True),  # 64 bits as 16 hex digits; NULL: not decodable
    sa.Column("problem", sa.Text, nullable=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_version_tags_table = sa.Table(
    "dataset_version_tags",
    metadata,
    sa.Column("tag", sa.String(200), primary_key=True),  # one name points at one version, like a git tag
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_dataset_version_tags_version", "dataset_version"),
)

model_trainings_table = sa.Table(
    "model_trainings",
    metadata,
    columns.serial_id(),
    sa.Column("dataset_version", sa.String(64), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=True),
    sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    sa.Column("dagster_run_id", sa.String(64), nullable=True),
    sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_model_trainings_version", "dataset_version"),
)


def m008_dataset_lineage(conn: Connection) -> None:
    for table in (item_phashes_table, dataset_version_tags_table, model_trainings_table):
        table.create(conn, checkfirst=True)
