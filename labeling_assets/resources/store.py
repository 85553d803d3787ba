"""The label store resource (SQLite by default, PostgreSQL by URL)."""

import dagster as dg
from pydantic import Field, PrivateAttr

from labeling_assets import env
from labeling_assets.core.errors import SetupError
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.resources.errors import as_failure


class LabelStoreResource(dg.ConfigurableResource["LabelStoreResource"]):  # the resource is its own value
    """The system of record. ``url`` is a SQLAlchemy URL; left empty, ``$LABEL_STORE_URL`` is read when a run
    first uses the store (SQLite under the data folder when unset, locally). A URL with a password belongs
    in that variable, or in ``dg.EnvVar``, never in code or the UI."""

    url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty = $LABEL_STORE_URL or SQLite <data>/labels.db."
    )

    _store: LabelStore | None = PrivateAttr(default=None)

    def get_store(self) -> LabelStore:
        """The store, migrated to the current schema (migration runs once per process).

        Raises:
            ConfigurationFailure: no URL (prod), an unusable URL, a database that does not exist, a refused login.
            ServiceFailure: no server answers at the URL's host and port.
            Both are ``dg.Failure``: a run fails with the one-line cause.
        """
        if self._store is None:
            try:
                store = LabelStore(self.url or env.label_store_url(), cache_dir=env.store_cache_dir())
                store.ensure_schema()
            except SetupError as exc:
                raise as_failure(exc) from exc
            self._store = store
        return self._store

    def check(self) -> str:
        """Connect and migrate now (the CLI's check before a run); returns where the store is, for a message."""
        return repr(self.get_store())
