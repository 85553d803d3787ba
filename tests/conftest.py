"""Shared fixtures: throwaway data folders and real label stores (SQLite always, PostgreSQL too).

PostgreSQL is the server on 127.0.0.1:5432 (trust auth); each store fixture gets a fresh database that
is dropped at the end of the session (by a detached process: no test waits for the checkpoints a drop forces).
Set LABELING_ASSETS_TEST_PG_URL to use another server.
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

# A run started in the background (CI, `scripts/test &`) has SIGINT ignored, and dagster maps SIGTERM to SIGINT's
# handler whenever it runs something in this process: SIGTERM then became ignored here, and every server a later
# test started (Label Studio, mlflow, a daemon) inherited that and spent its stop's whole grace (20 s each, a dozen
# times a run). With Python's own SIGINT handler the mapping leaves children the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Before any project import: nothing a test does may touch the developer's ./data folder.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="labeling-assets-tests-"))
os.environ["LABELING_ASSETS_HOME"] = str(_SESSION_HOME)
os.environ.pop("LABEL_STORE_URL", None)
os.environ.pop("LABELING_ASSETS_CLASSES", None)  # a class list exported in the shell would replace the tests' digits

from labeling_assets.core.store.schema import LabelStore  # noqa: E402

# One real Label Studio for the whole session, shared by every folder that asks for it.
from tests.forked_cli import ForkedCli  # noqa: E402
from tests.labelstudio_server import label_studio  # noqa: E402, F401

# Server markers from the fixtures a test uses, checked while it runs (the tiers of scripts/test rely on them).
from tests.server_markers import (  # noqa: E402, F401
    _servers_carry_their_markers,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_protocol,
    pytest_unconfigure,
)

# pytester: tests/test_markers.py runs small pytest sessions of its own.
pytest_plugins = ["pytester"]

PG_ADMIN_URL = os.environ.get("LABELING_ASSETS_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


# The throwaway databases' dropper (PostgresDatabases.drop_in_background): a process of its own, so a session's end
# never waits for the checkpoints the drops force.
_DROPPER = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
import sqlalchemy as sa

asked = json.loads(sys.argv[1])
admin = sa.create_engine(asked["url"], isolation_level="AUTOCOMMIT")

def run(sql):
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(sql)
    except Exception as exc:
        print(f"{sql}: {str(exc).splitlines()[0]}", flush=True)

with ThreadPoolExecutor(max_workers=8) as pool:
    list(pool.map(run, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in asked["databases"]]))
for role in asked["roles"]:
    run(f'DROP ROLE IF EXISTS "{role}"')
admin.dispose()
"""


class PostgresDatabases:
    """Creates throwaway databases on the test server and has them all dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"la_test_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self._template: str | None = None

    def new_url(self, template: str | None = None) -> str:
        """A new empty database, or a copy of the database ``template`` (no one may be connected to it)."""
        name = f"{self.prefix}_{len(self.created)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
            # A commit returns before its WAL reaches the disk: only a crash of the server could lose it, and
            # no test crashes the machine's PostgreSQL (a killed client loses nothing either way).
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        self.created.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_in_background(self, databases: list[str], roles: Sequence[str] = ()) -> None:
        """Drop databases, then roles, from a detached process: nothing here waits for it.

        Each DROP DATABASE waits for a checkpoint of the whole server (PostgreSQL 15's dropdb forces one); under
        the other workers' writes that took 38-58 s in CI runs (test_postgres_roles' teardown), seconds when the
        server is quiet. Drops issued together share a checkpoint: they go 8 at a time. A failure is one line in
        <tmp>/labeling-assets-test-drops.log."""
        request = json.dumps({"url": self.admin.url.render_as_string(hide_password=False), "databases": databases,
                              "roles": list(roles)})  # fmt: skip
        log = str(Path(tempfile.gettempdir()) / "labeling-assets-test-drops.log")
        # posix_spawn, not subprocess: the session's own clean-up is no test's fresh Python (tests/server_markers.py
        # looks at every Popen of the test being run, and this runs in the teardown of whichever test came last).
        os.posix_spawn(sys.executable, [sys.executable, "-c", _DROPPER, request], os.environ, setsid=True,
                       file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                     (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                                     (os.POSIX_SPAWN_DUP2, 1, 2)])  # fmt: skip

    def drop_all(self) -> None:
        self.drop_in_background(self.created)
        self.admin.dispose()

    def migrated_template(self) -> str:
        """The name of a database holding the store's schema (made once): a copy is a migrated store in a
        tenth of a second instead of the second its migrations take."""
        if self._template is None:
            url = self.new_url()
            store = LabelStore(url)
            store.migrate()
            store.dispose()  # a template must have no connection
            self._template = sa.make_url(url).database
        return self._template


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test leaves the process environment as it found it. The demos point this process at their project
    by setting variables (``env.set_variable``: task type, class list, data folder, Dagster home), and
    ``monkeypatch.delenv`` of a variable that was unset restores nothing: a demo test left
    ``LABELING_ASSETS_TASK_TYPE=text_spans`` behind, and the later image-project tests on the same xdist worker
    listed no images (seven failures in one CI run, depending on which worker took which file)."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _no_stale_dagster_state_storage() -> Iterator[None]:
    """Dagster 1.13's ``DagsterInstance.__exit__`` disposes the instance but never resets the context variable
    its ``__enter__`` set to the instance's defs-state storage. A later test that loads definitions in the same
    thread then reads a dead instance weakref ("Attempted to resolve undefined DagsterInstance weakref"),
    depending on test order and garbage collection. Reset it around every test."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
    yield
    _current_storage.set(None)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    try:
        dbs = PostgresDatabases(PG_ADMIN_URL)
        with dbs.admin.connect():
            pass
    except sa.exc.OperationalError as exc:  # a missing server is a failure, not a skip: CI has one
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def forked_cli() -> Iterator[ForkedCli]:
    """``labeling-assets`` commands (and the fault tests' killable scripts), each a fork of one Python that imported
    the project once (tests/forked_cli.py): one server a worker, started by the first command."""
    script = shutil.which("labeling-assets", path=str(Path(sys.executable).parent))
    assert script, "labeling-assets is not installed next to this Python: pip install -e ."
    # The server's own environment only serves its imports (which read none of it): a throwaway data folder,
    # Dagster home and matplotlib folder, so nothing it does lands in the developer's.
    home = Path(tempfile.mkdtemp(prefix="forked-cli-home-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_", "LABELING_ASSETS_", "MLFLOW_"))}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        LABELING_ASSETS_HOME=str(home / "data"),
        DAGSTER_HOME=str(home),
        MPLCONFIGDIR=str(home / "matplotlib"),
    )
    forks = ForkedCli(script, env)
    yield forks
    forks.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh project data folder for one test."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[LabelStore]:
    store = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def postgres_store(pg_databases: PostgresDatabases) -> Iterator[LabelStore]:
    store = LabelStore(pg_databases.new_url(template=pg_databases.migrated_template()))
    store.migrate()  # a no-op on the migrated copy, as on any started store
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> LabelStore:
    """The same test against both backends."""
    return request.getfixturevalue(f"{request.param}_store")
