"""Schema migration 13: spot-check review: which answers were sampled for review, and the reviewers' verdicts.

- ``spot_check_samples``: one row per sampled answer (a Label Studio annotation of a labeler): the answer as it was
  when sampled, the draw and the rate it was compared with and why that rate (the audit of the sample). The row is
  written once; only its Label Studio task (``ls_project_id``, ``ls_task_id``, ``pushed_at``) is filled in when
  the answer is pushed to the spot-check project.
- ``spot_check_verdicts``: append-only verdicts (accept | reject | fix), one row per version of a reviewer's
  answer in the spot-check project; the newest per sampled answer counts. A fix also holds the corrected answer in
  the kind's own form (it is recorded as an expert answer in ``adjudications`` too).

Own ``MetaData`` (like ``held_out_schema``): migration 13 creates the tables on every database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from labeling_assets.core.store import columns

metadata = sa.MetaData()

spot_check_samples_table = sa.Table(
    "spot_check_samples",
    metadata,
    columns.serial_id(),
    sa.Column("ls_annotation_id", sa.BigInteger, nullable=False),  # the labeler's answer that was sampled
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("labeler_id", sa.String(64), nullable=False),
    sa.Column("answer", sa.JSON, nullable=False),  # the answer as sampled (what the reviewer is shown)
    sa.Column("answer_created_at", sa.DateTime(timezone=True), nullable=True),  # Label Studio's created_at
    sa.Column("draw", sa.Float, nullable=False),  # keyed hash of (seed, ls_annotation_id) in [0, 1)
    sa.Column("rate", sa.Float, nullable=False),  # sampled because draw < rate
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),  # why this rate (base rate, or new labeler and why)
    sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ls_project_id", sa.Integer, nullable=True),  # the spot-check project, once pushed
    sa.Column("ls_task_id", sa.BigInteger, nullable=True),
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("ls_annotation_id", name="uq_spot_check_samples_answer"),
    sa.Index("ix_spot_check_samples_labeler", "labeler_id"),
)

spot_check_verdicts_table = sa.Table(
    "spot_check_verdicts",
    metadata,
    columns.serial_id(),
    sa.Column("ls_annotation_id", sa.BigInteger, nullable=False),  # the sampled answer judged
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("labeler_id", sa.String(64), nullable=False),  # whose answer
    sa.Column("verdict", sa.String(16), nullable=False),  # accept | reject | fix
    sa.Column("fixed_answer", sa.JSON(none_as_null=True), nullable=True),  # a fix: the answer in the kind's form
    sa.Column("reviewer_id", sa.String(64), nullable=False),
    sa.Column("reviewer_name", sa.Text, nullable=True),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("ls_task_id", sa.BigInteger, nullable=True),
    sa.Column("review_annotation_id", sa.BigInteger, nullable=False),  # the reviewer's annotation
    sa.Column("content_hash", sa.String(64), nullable=False),  # an unchanged verdict is not stored twice
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),  # Label Studio's updated_at
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("review_annotation_id", "content_hash", name="uq_spot_check_verdicts_version"),
    sa.Index("ix_spot_check_verdicts_labeler", "labeler_id"),
)


def m013_spot_checks(conn: Connection) -> None:
    """Create ``spot_check_samples`` and ``spot_check_verdicts``."""
    metadata.create_all(conn, checkfirst=True)
