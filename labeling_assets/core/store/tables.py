"""The label store's core tables (SQLAlchemy Core metadata shared by SQLite and PostgreSQL).

Tables added by later migrations live in their ``<topic>_schema.py`` modules; :mod:`.schema` re-exports these
under their old names, so ``from labeling_assets.core.store.schema import items_table`` keeps working.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from labeling_assets.core.store import columns

metadata = sa.MetaData()


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC (every timestamp in the store is UTC)."""
    return dt.datetime.now(dt.UTC)


schema_migrations_table = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per distinct content (sha256). Quarantined content is kept too, with its reason, so the
# store says what happened to every file it was shown.
items_table = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),  # sha256 hex of the bytes
    sa.Column("uri", sa.Text, nullable=True),  # content-addressed copy; null when bytes were unreadable
    sa.Column("source_path", sa.Text, nullable=False),  # where it was first seen
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("mode", sa.String(16), nullable=True),
    sa.Column("format", sa.String(16), nullable=True),
    sa.Column("n_bytes", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | quarantined | superseded | missing | media
    sa.Column("status_reason", sa.String(64), nullable=True),
    sa.Column("status_detail", sa.Text, nullable=True),
    sa.Column("supersedes", sa.String(64), nullable=True),  # item that the same path held before
    sa.Column("group_key", sa.Text, nullable=True),  # e.g. patient / scan id for group-aware splits
    sa.Column("gold_label", sa.JSON(none_as_null=True), nullable=True),  # only for gold items; never sent to Label Studio
    sa.Index("ix_items_status", "status"),
    # m019: an audio item's measures (core.ingest.audio); NULL for every other kind of item.
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("sample_rate", sa.Integer, nullable=True),
    sa.Column("channels", sa.Integer, nullable=True),
)

# The ingest manifest: the last state of every source path, so re-ingest skips unchanged files
# (same size, mtime, ctime and inode: m004) without reading them, and files that cannot even be hashed are
# still recorded. A path gone from the source keeps its row with outcome "missing" (and its item_id).
source_files_table = sa.Table(
    "source_files",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("mtime_ns", sa.BigInteger, nullable=True),
    sa.Column("item_id", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # new | duplicate | changed | quarantined | missing | ...
    sa.Column("reason", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=False),  # last read (or found gone)
    # m004: the kernel sets ctime on any write or chmod (an edit that restores the mtime still moves it);
    # a file replaced by another has a new inode. NULL for rows written before m004 (read once again).
    sa.Column("ctime_ns", sa.BigInteger, nullable=True),
    sa.Column("inode", sa.BigInteger, nullable=True),
    sa.Index("ix_source_files_item", "item_id"),
)

labelers_table = sa.Table(
    "labelers",
    metadata,
    sa.Column("labeler_id", sa.String(64), primary_key=True),  # stable Label Studio user id, never email
    sa.Column("display_name", sa.Text, nullable=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    # m010: Label Studio username (or email) and its sanitized form, the labelers partition key people read.
    sa.Column("username", sa.Text, nullable=True),
    sa.Column("partition_key", sa.Text, nullable=True),
)

tasks_table = sa.Table(
    "tasks",
    metadata,
    columns.serial_id(),
    sa.Column("item_id", sa.String(64), sa.ForeignKey("items.item_id"), nullable=False),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("ls_task_id", sa.Integer, nullable=True),  # null between "reserved" and "pushed"
    sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("required_annotations", sa.Integer, nullable=False),
    sa.Column("is_gold", sa.Boolean, nullable=False, default=False),
    sa.Column("priority", sa.Float, nullable=True),
    sa.Column("model_version", sa.String(200), nullable=True),
    sa.UniqueConstraint("ls_project_id", "item_id", name="uq_tasks_project_item"),
    sa.Index("ix_tasks_ls_task", "ls_task_id"),
)

# Append-only: one row per version of a Label Studio annotation (see module docstring).
annotations_table = sa.Table(
    "annotations",
    metadata,
    columns.serial_id(),
    sa.Column("ls_annotation_id", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("ls_task_id", sa.BigInteger, nullable=True),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("labeler_id", sa.String(64), nullable=False),
    sa.Column("label", sa.JSON(none_as_null=True), nullable=True),  # class name or list of class names; null on tombstones
    sa.Column("lead_time_s", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("supersedes", sa.Integer, nullable=True),  # id of the previous version row
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("content_hash", sa.String(64), nullable=False),  # of (label, deleted): re-polls add nothing
    sa.UniqueConstraint("ls_annotation_id", "version", name="uq_annotations_version"),
    sa.Index("ix_annotations_item", "item_id"),
    sa.Index("ix_annotations_labeler", "labeler_id"),
)

consensus_table = sa.Table(
    "consensus",
    metadata,
    columns.serial_id(),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("label", sa.JSON, nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("agreement", sa.Float, nullable=True),
    sa.Column("n_annotators", sa.Integer, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    # class -> probability under the method (Dawid-Skene posterior, majority vote shares); NULL when the
    # method has none (crowdlab) or for rows written before migration 3. Training uses it as soft targets.
    sa.Column("probabilities", sa.JSON(none_as_null=True), nullable=True),
    # A retraction version (m005): the item lost its consensus (too few live votes, superseded,
    # quarantined, class removed). ``label`` keeps what was retracted; readers skip these rows.
    sa.Column("retracted", sa.Boolean, nullable=False, server_default=sa.false(), default=False),
    sa.Column("retraction_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("item_id", "version", name="uq_consensus_version"),
)

# Items sent back: low consensus confidence, cleanlab label issues, ... (what and why, append-only).
review_requests_table = sa.Table(
    "review_requests",
    metadata,
    columns.serial_id(),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # consensus | label_issues | ...
    sa.Column("action", sa.String(32), nullable=False),  # more_annotators | expert_review
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
)

# What the pipeline did about a review request (append-only audit): e.g. the Label Studio overlap it raised.
# One row per step: a task is raised to a given overlap once, whichever request or run asked (m002).
review_actions_table = sa.Table(
    "review_actions",
    metadata,
    columns.serial_id(),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("review_requests.id"), nullable=False),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("ls_project_id", sa.Integer, nullable=False),
    sa.Column("ls_task_id", sa.Integer, nullable=True),
    sa.Column("action", sa.String(32), nullable=False),  # overlap_raised
    sa.Column("overlap_from", sa.Integer, nullable=True),
    sa.Column("overlap_to", sa.Integer, nullable=True),
    sa.Column("acted_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("ls_project_id", "item_id", "action", "overlap_to", name="uq_review_actions_step"),
    sa.Index("ix_review_actions_request", "request_id"),
)

labeler_stats_table = sa.Table(
    "labeler_stats",
    metadata,
    columns.serial_id(),
    sa.Column("labeler_id", sa.String(64), nullable=False),
    sa.Column("window", sa.String(32), nullable=False),  # "all" or an ISO week / date range
    sa.Column("gold_accuracy", sa.Float, nullable=True),
    sa.Column("kappa_vs_consensus", sa.Float, nullable=True),
    sa.Column("n_labels", sa.Integer, nullable=False),
    sa.Column("median_time_s", sa.Float, nullable=True),
    sa.Column("p90_time_s", sa.Float, nullable=True),
    sa.Column("labels_per_day", sa.Float, nullable=True),
    sa.Column("class_distribution", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_labeler_stats_labeler", "labeler_id"),
)

prelabels_table = sa.Table(
    "prelabels",
    metadata,
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.String(200), primary_key=True),
    sa.Column("probs", sa.JSON, nullable=False),  # {class name: probability}
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)

splits_table = sa.Table(
    "splits",
    metadata,
    # One row per item, ever: the split is frozen once assigned.
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("split", sa.String(8), nullable=False),  # train | val | test
    sa.Column("dataset_version", sa.String(64), nullable=False),  # version at first assignment
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
)

dataset_versions_table = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("dataset_version", sa.String(64), primary_key=True),  # hash of the (item, label, split) manifest
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("n_items", sa.Integer, nullable=False),
    sa.Column("class_weights", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("manifest", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("card", sa.Text, nullable=True),
)

# One row per Label Studio project (m006): the time of the newest annotation snapshot committed by a sync,
# taken before its export was read. A sync of an older snapshot is refused, so two overlapping collect runs
# can never commit out of order (an old export would revive deleted annotations and revert edits).
sync_watermarks_table = sa.Table(
    "sync_watermarks",
    metadata,
    sa.Column("ls_project_id", sa.Integer, primary_key=True),
    sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=True),  # null until a first sync commits
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
)
