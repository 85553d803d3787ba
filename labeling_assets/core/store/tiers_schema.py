"""Schema migration 20: machine labels with a guarantee (docs/tiers.md).

- ``machine_label_decisions``: per dataset version, whether the champion labeled items by machine and why: the
  target and confidence, the threshold chosen by fixed-sequence testing with its Clopper-Pearson lower bound and
  the reference items behind it, how many items got a machine label, and the production check (the check sample's
  agreement with people and its interval). The first decision of a version stands (like its manifest).
- ``machine_label_checks``: the machine-labeled items that still go to people (a keyed-hash sample), with the
  machine label they had, so the production check can compare once people have answered.

Each item's tier (and its confidence) is in its version's manifest (``tier``, ``tier_confidence``): written once
with the version, so no table repeats it. Own ``MetaData``: migration 20 creates both tables on every database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

machine_label_decisions_table = sa.Table(
    "machine_label_decisions",
    metadata,
    sa.Column("dataset_version", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.String(200), nullable=True),  # the champion whose pre-labels were tested
    sa.Column("status", sa.String(32), nullable=False),  # on | off | no threshold | no champion | suspended
    sa.Column("target", sa.Float, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("lower_bound", sa.Float, nullable=True),
    sa.Column("n", sa.Integer, nullable=False),  # reference items at the threshold (all of them when none)
    sa.Column("n_correct", sa.Integer, nullable=False),
    sa.Column("n_reference", sa.Integer, nullable=False),
    sa.Column("n_machine", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("production", sa.JSON, nullable=True),  # tiers.ProductionCheck.as_dict() of the champion's sample
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)

machine_label_checks_table = sa.Table(
    "machine_label_checks",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.String(200), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("dataset_version", sa.String(64), nullable=False),  # the first version that held the machine label
    sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
)


def m020_machine_labels(conn: Connection) -> None:
    """Create ``machine_label_decisions`` and ``machine_label_checks``."""
    metadata.create_all(conn, checkfirst=True)
