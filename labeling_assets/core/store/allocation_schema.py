"""Schema migration 18: the allocator's decisions, one audited row per queue slot it filled.

``allocation_decisions``: per queue run (``run_id``), each decision of ``core/allocation/allocator.py`` (the
slot, the item, the action: ``new_item`` | ``more_label`` | ``expert``, whether the random arm chose it, the
estimated accuracy gain, the cost, the reason) and what the queue did with it (``outcome``: queued, overlap
raised, expert review requested, or why not). Written once, never updated: the audit of what the queue spent.
Runs under the existing rules that fall back from the allocator are recorded too (``action`` ``fallback``,
the reason counted), so a report can tell "the allocator chose nothing" from "the allocator did not run".

Own ``MetaData`` (like ``spot_check_schema``): migration 18 creates the table on every database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

allocation_decisions_table = sa.Table(
    "allocation_decisions",
    metadata,
    columns.serial_id(),
    sa.Column("run_id", sa.String(64), nullable=False),  # one queue run (the Dagster run id, or a uuid)
    sa.Column("project_id", sa.Integer, nullable=True),  # the Label Studio project the slot was in
    sa.Column("slot", sa.Integer, nullable=False),
    sa.Column("item_id", sa.String(64), nullable=True),  # None: a fall-back row (no item chosen)
    sa.Column("action", sa.String(16), nullable=False),  # new_item | more_label | expert | fallback
    sa.Column("random_arm", sa.Boolean, nullable=False),
    sa.Column("estimated_gain", sa.Float, nullable=True),  # expected accuracy gained per answer (per review)
    sa.Column("cost", sa.Float, nullable=True),  # in the pay rates' currency, or in labels by default
    sa.Column("gain_per_cost", sa.Float, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),  # queued | overlap_raised | expert_requested | ...
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_allocation_decisions_run", "run_id"),
    sa.Index("ix_allocation_decisions_item", "item_id"),
)


def m018_allocation_decisions(conn: Connection) -> None:
    """Create ``allocation_decisions``."""
    metadata.create_all(conn, checkfirst=True)
