"""The label store resource (SQLite by default, PostgreSQL by URL)."""

import dagster as dg
from pydantic import Field, PrivateAttr

from labeling_assets import env
from labeling_assets.core.store.schema import LabelStore


class LabelStoreResource(dg.ConfigurableResource["LabelStoreResource"]):  # the resource is its own value
    """The system of record. ``url`` is a SQLAlchemy URL; left empty, ``$LABEL_STORE_URL`` is read when a run
    first uses the store (SQLite under the data folder when unset, locally). A URL with a password belongs
    in that variable, or in ``dg.EnvVar``, never in code or the UI."""

    url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty = $LABEL_STORE_URL or SQLite <data>/labels.db."
    )

    _store: LabelStore | None = PrivateAttr(default=None)

    def get_store(self) -> LabelStore:
        """The store, migrated to the current schema (migration runs once per process)."""
        if self._store is None:
            store = LabelStore(self.url or env.label_store_url())
            store.ensure_schema()
            self._store = store
        return self._store
