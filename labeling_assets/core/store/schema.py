"""The label store: the system of record for items, tasks, annotations and everything derived.

SQLAlchemy Core, one schema, SQLite by default and PostgreSQL by URL. The schema is created and
migrated by :meth:`LabelStore.migrate` (an ordered list of explicit migrations recorded in
``schema_migrations``), never by hand-run SQL.

Annotations are append-only: a database trigger rejects UPDATE and DELETE on ``annotations`` on both
backends, so an edited Label Studio annotation can only ever become a new version row that
``supersedes`` the previous one, and a deleted one a tombstone row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from labeling_assets.core.store import connect_errors
from labeling_assets.core.store.heads_schema import annotation_heads_table
from labeling_assets.core.store.migrations import MIGRATIONS
from labeling_assets.core.store.tables import (
    annotations_table as annotations_table,
)
from labeling_assets.core.store.tables import (
    consensus_table as consensus_table,
)
from labeling_assets.core.store.tables import (
    dataset_versions_table as dataset_versions_table,
)
from labeling_assets.core.store.tables import (
    items_table as items_table,
)
from labeling_assets.core.store.tables import (
    labeler_stats_table as labeler_stats_table,
)
from labeling_assets.core.store.tables import (
    labelers_table as labelers_table,
)
from labeling_assets.core.store.tables import (  # re-exported: the store's tables are imported from here
    metadata as metadata,
)
from labeling_assets.core.store.tables import (
    prelabels_table as prelabels_table,
)
from labeling_assets.core.store.tables import (
    review_actions_table as review_actions_table,
)
from labeling_assets.core.store.tables import (
    review_requests_table as review_requests_table,
)
from labeling_assets.core.store.tables import (
    schema_migrations_table as schema_migrations_table,
)
from labeling_assets.core.store.tables import (
    source_files_table as source_files_table,
)
from labeling_assets.core.store.tables import (
    splits_table as splits_table,
)
from labeling_assets.core.store.tables import (
    sync_watermarks_table as sync_watermarks_table,
)
from labeling_assets.core.store.tables import (
    tasks_table as tasks_table,
)
from labeling_assets.core.store.tables import (
    utcnow as utcnow,
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
