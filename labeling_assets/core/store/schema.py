"""The label store: the system of record for items, tasks, annotations and everything derived.

SQLAlchemy Core, one schema, SQLite by default and PostgreSQL by URL. The schema is created and
migrated by :meth:`LabelStore.migrate` (an ordered list of explicit migrations recorded in
``schema_migrations``), never by hand-run SQL.

Annotations are append-only: a database trigger rejects UPDATE and DELETE on ``annotations`` on both
backends, so an edited Label Studio annotation can only ever become a new version row that
``supersedes`` the previous one, and a deleted one a tombstone row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from labeling_assets.core.store import columns, connect_errors
from labeling_assets.core.store.heads_schema import annotation_heads_table

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
    sa.Column("status", sa.String(16), nullable=False),  # active | quarantined | superseded | missing
    sa.Column("status_reason", sa.String(64), nullable=True),
    sa.Column("status_detail", sa.Text, nullable=True),
    sa.Column("supersedes", sa.String(64), nullable=True),  # item that the same path held before
    sa.Column("group_key", sa.Text, nullable=True),  # e.g. patient / scan id for group-aware splits
    sa.Column("gold_label", sa.JSON(none_as_null=True), nullable=True),  # only for gold items; never sent to Label Studio
    sa.Index("ix_items_status", "status"),
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

class AppendOnlyViolation(RuntimeError):
    """Raised when code tries to change or remove a stored annotation version."""


class LabelStore:
    """Typed access to the label store at a SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``)."""

    def __init__(self, url: str, *, echo: bool = False, cache_dir: Path | None = None) -> None:
        self.url = url
        # Where a PostgreSQL store keeps its snapshot of current annotations (core.store.current_cache); None:
        # no snapshot, read in full. The resource passes <data>/cache/store (labeling_assets.env).
        self.cache_dir = cache_dir
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                connect_errors.make_folder(url, Path(database).parent)  # a failure names the folder
            # Dagster runs ops in threads/subprocesses; WAL + a busy timeout keep concurrent writers safe.
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = connect_errors.create_engine(url, **kwargs)  # its errors: one line, no password
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)

    def __repr__(self) -> str:  # never print credentials
        return f"LabelStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: everything inside commits together or not at all."""
        with self.engine.begin() as conn:
            yield conn

    # -- schema --------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The highest applied migration, 0 for an empty database."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(schema_migrations_table.name):
                return 0
            value = conn.execute(sa.select(sa.func.max(schema_migrations_table.c.version))).scalar()
            return int(value or 0)

    def migrate(self) -> list[int]:
        """Apply every pending migration in order, each in its own transaction; return what was applied.

        Safe to call on every start (idempotent) and from several processes: a migration that another
        process applied first is skipped.
        """
        with self.engine.begin() as conn:
            schema_migrations_table.create(conn, checkfirst=True)
        from labeling_assets.core.store.migrations import MIGRATIONS  # it imports this module's tables

        applied: list[int] = []
        for migration in MIGRATIONS:
            with self.engine.begin() as conn:
                if self.backend == "postgresql":
                    # Serialize concurrent migrators on PostgreSQL (released at commit).
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724011)")
                done = conn.execute(
                    sa.select(schema_migrations_table.c.version).where(schema_migrations_table.c.version == migration.version)
                ).first()
                if done:
                    continue
                migration.apply(conn)
                conn.execute(
                    schema_migrations_table.insert().values(
                        version=migration.version, name=migration.name, applied_at=utcnow()
                    )
                )
                applied.append(migration.version)
        return applied

    def ensure_schema(self) -> None:
        """Migrate when any migration is missing; cheap when current (one query).

        Any, not only newer ones: numbers are assigned ahead of time, so a lower one can ship after a higher one
        (m004 landed after m005 and m006) and a store already at the highest would never get it.
        """
        with self.engine.connect() as conn:
            try:
                applied = set(conn.execute(sa.select(schema_migrations_table.c.version)).scalars())
            except sa.exc.DBAPIError:  # no schema_migrations table yet: an empty database
                applied = set()
        from labeling_assets.core.store.migrations import MIGRATIONS  # it imports this module's tables

        if not {m.version for m in MIGRATIONS} <= applied:
            self.migrate()

    # -- generic helpers -----------------------------------------------------------------------
    def count(self, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        with self.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(table)
            for clause in where:
                stmt = stmt.where(clause)
            return int(conn.execute(stmt).scalar() or 0)

    def fetch(self, stmt: sa.Select[*tuple[Any, ...]]) -> list[dict[str, Any]]:
        """Every row of ``stmt`` as a dict (any SELECT, whatever its column types)."""
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_url(path: str) -> str:
    """``sqlite:///`` URL for a file path."""
    return f"sqlite:///{path}"


def chunked(rows: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Slices of at most ``size`` rows (keeps bulk inserts under driver parameter limits)."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# --- shared reads -------------------------------------------------------------------------------


def current_annotations_query() -> sa.Select[Any]:
    """The latest version of every annotation that is not a tombstone (via ``annotation_heads``, m009).

    Columns: ls_annotation_id, version, ls_task_id, item_id, labeler_id, label, lead_time_s,
    created_at, updated_at. One row per Label Studio annotation; a labeler may have more than one
    annotation of the same item (consumers decide, e.g. keep the newest per (item, labeler)).
    """
    a, h = annotations_table, annotation_heads_table
    return (
        sa.select(
            a.c.ls_annotation_id, a.c.version, a.c.ls_task_id, a.c.item_id, a.c.labeler_id, a.c.label,
            a.c.lead_time_s, a.c.created_at, a.c.updated_at,
        )  # fmt: skip
        .select_from(h.join(a, a.c.id == h.c.row_id))
        .where(h.c.deleted.is_(False))
        .order_by(h.c.ls_annotation_id)
    )


def latest_consensus_query(*, include_retracted: bool = False) -> sa.Select[Any]:
    """The newest consensus version per item: the item's live consensus.

    An item whose newest version is a retraction has none (it lost its consensus); ``include_retracted``
    returns that retraction row instead (for writers that number versions and for audits).
    """
    c = consensus_table
    latest = sa.select(c.c.item_id, sa.func.max(c.c.version).label("version")).group_by(c.c.item_id).subquery()
    query = sa.select(c).join(latest, sa.and_(c.c.item_id == latest.c.item_id, c.c.version == latest.c.version))
    return query if include_retracted else query.where(c.c.retracted.is_(False))
