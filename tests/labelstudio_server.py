"""A real Label Studio for the integration tests: started once per session, torn down at the end.

``label_studio`` (registered in tests/conftest.py, so one server serves every folder) starts the server through the project's own ``labeling_assets.local.labelstudio`` in a
fresh data folder on a free port. It skips only when Label Studio is not installed (CI installs it via
scripts/setup.sh -> scripts/install_label_studio.sh). Reuse it in any test: ``label_studio.client()``
is an admin client, ``label_studio.resource(title)`` a LabelStudioResource for a project title, and
``label_studio.stop()`` / ``label_studio.start()`` take the server down and bring it back (same URL).
``start_server(data_dir)`` starts another one where a data folder's own local server lives.
``label_studio_postgres`` (module scoped) is a second server on PostgreSQL, as the docker stack runs it: Label
Studio's own DJANGO_DB / POSTGRE_* settings on a throwaway database of the test server.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from labeling_assets.local import labelstudio as server
from labeling_assets.local.labelstudio_database import remembered
from labeling_assets.resources.labelstudio import LabelStudioClient, LabelStudioResource

if TYPE_CHECKING:
    from tests.conftest import PostgresDatabases


@dataclass
class LabelStudioServer:
    paths: server.ServerPaths
    port: int
    files_root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return server.read_token(self.paths)

    def client(self) -> LabelStudioClient:
        return LabelStudioClient(self.url, self.token)

    def resource(self, project_title: str) -> LabelStudioResource:
        return LabelStudioResource(url=self.url, api_key=self.token, project_title=project_title)

    def start(self) -> None:
        server.start(self.paths, port=self.port, data_folder=self.files_root)

    def stop(self) -> None:
        server.stop(self.paths)


def start_server(data_dir: Path) -> LabelStudioServer:
    """A fresh server of the data folder ``data_dir`` (under ``<data_dir>/labelstudio``, where
    ``labeling-assets labelstudio start`` puts it) on a free port; skips when Label Studio is not installed."""
    if not server.is_installed():
        pytest.skip(
            f"Label Studio is not installed at {server.ls_venv()} (run scripts/install_label_studio.sh "
            "or set LABEL_STUDIO_VENV)"
        )
    handle = LabelStudioServer(
        paths=server.ServerPaths(data_dir / "labelstudio"), port=server.free_port(), files_root=data_dir
    )
    # A copy of a migrated template: a fresh server in seconds instead of a minute of migrations.
    server.start_fresh(handle.paths, port=handle.port, data_folder=handle.files_root)
    return handle


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LabelStudioServer]:
    handle = start_server(Path(tempfile.mkdtemp(prefix="labelstudio-test-")))
    try:
        yield handle
    finally:
        handle.stop()


# A migrated, never-used Label Studio database kept on the test server (with its token files beside the Label
# Studio venv), the PostgreSQL twin of server.template_root(): a copy is a fresh server in seconds, not the
# minute or more of Django migrations.
PG_TEMPLATE = f"la_labelstudio_{server.LS_VERSION.replace('.', '_')}_template"


def _template_exists(admin: sa.Engine) -> bool:
    with admin.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_TEMPLATE})
        return found.first() is not None


def _postgres_template(admin: sa.Engine) -> Path:
    folder = server.ls_venv() / "migrated-template-postgres"
    if (folder / "ready").is_file() and _template_exists(admin):
        return folder
    staging_db = f"{PG_TEMPLATE}_staging_{os.getpid()}"
    staging = Path(tempfile.mkdtemp(prefix="template-pg-", dir=server.ls_venv()))
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{staging_db}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{staging_db}"')
    staged = server.ServerPaths(staging)
    nothing_served = Path(tempfile.mkdtemp(prefix="template-data-"))
    try:
        server.start(
            staged,
            port=server.free_port(),
            data_folder=nothing_served,
            database=admin.url.set(database=staging_db).render_as_string(hide_password=False),
        )
    finally:
        server.stop(staged)
        shutil.rmtree(nothing_served, ignore_errors=True)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
        conn.exec_driver_sql(f'ALTER DATABASE "{staging_db}" RENAME TO "{PG_TEMPLATE}"')
    for name in ("server.pid", "server.json", "server.log", "database.json"):
        (staging / name).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    (staging / "ready").write_text(PG_TEMPLATE)
    staging.rename(folder)
    return folder


def start_postgres_server(data_dir: Path, databases: "PostgresDatabases") -> LabelStudioServer:
    """A fresh server of ``data_dir`` on a throwaway PostgreSQL database (a copy of the migrated template)."""
    if not server.is_installed():
        pytest.skip(f"Label Studio is not installed at {server.ls_venv()} (run scripts/install_label_studio.sh)")
    template = _postgres_template(databases.admin)
    url = databases.new_url(template=PG_TEMPLATE)
    handle = LabelStudioServer(
        paths=server.ServerPaths(data_dir / "labelstudio"), port=server.free_port(), files_root=data_dir
    )
    shutil.copytree(template, handle.paths.root, ignore=shutil.ignore_patterns("ready"))
    server.start(handle.paths, port=handle.port, data_folder=data_dir, database=url)
    assert remembered(handle.paths) is not None  # a restart (handle.start()) stays on this database
    return handle


@pytest.fixture(scope="module")
def label_studio_postgres(pg_databases: "PostgresDatabases") -> Iterator[LabelStudioServer]:
    handle = start_postgres_server(Path(tempfile.mkdtemp(prefix="labelstudio-pg-test-")), pg_databases)
    try:
        yield handle
    finally:
        handle.stop()

