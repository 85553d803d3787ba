"""The label store resource (SQLite by default, PostgreSQL by URL)."""

import dagster as dg
from pydantic import PrivateAttr

from labeling_assets.core.store.schema import LabelStore


class LabelStoreResource(dg.ConfigurableResource):
    """The system of record. ``url`` is a SQLAlchemy URL; for PostgreSQL pass it through ``dg.EnvVar``
    so the password stays out of code and the UI."""

    url: str

    _store: LabelStore | None = PrivateAttr(default=None)

    def get_store(self) -> LabelStore:
        """The store, migrated to the current schema (migration runs once per process)."""
        if self._store is None:
            store = LabelStore(self.url)
            store.ensure_schema()
            self._store = store
        return self._store
