"""Least privilege in PostgreSQL: docker/postgres-init.sql, run as the stack runs it, on the real server.

The file runs through psql (as the postgres image's entrypoint does) with a throwaway name prefix; every role
and database it made is dropped afterwards. The test server trusts local connections (no password check),
so what is asserted is the CONNECT privilege and the role attributes, which hold whatever the auth method.
"""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, PostgresDatabases

INIT_SQL = Path(__file__).resolve().parents[2] / "docker" / "postgres-init.sql"
SERVICES = {  # database (= role) -> the variable holding its password
    "dagster": "DAGSTER_PG_PASSWORD",
    "labels": "LABEL_STORE_PG_PASSWORD",
    "labelstudio": "LABEL_STUDIO_PG_PASSWORD",
    "mlflow": "MLFLOW_PG_PASSWORD",
}

pytestmark = pytest.mark.postgres


def _run_init(prefix: str, passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is missing: `apt-get install postgresql-client` (CI has it)")
    url = sa.engine.make_url(PG_ADMIN_URL)
    # Passwords through the environment, as in the stack (\getenv), never on psql's command line.
    env = {**os.environ, **passwords}
    if url.password:
        env["PGPASSWORD"] = url.password
    cmd = [psql, "-X", "-q", "-h", str(url.host), "-p", str(url.port or 5432), "-U", str(url.username)]
    cmd += ["-d", str(url.database), "-v", f"prefix={prefix}", "-f", str(INIT_SQL)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def _made(prefix: str) -> tuple[list[str], list[str]]:
    """The databases and roles the init file makes under ``prefix`` (each service: a database and its role)."""
    names = [prefix + name for name in SERVICES]
    return names, names


@pytest.fixture(scope="module")
def admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def roles(pg_databases: PostgresDatabases) -> Iterator[str]:
    """The stack's roles and databases, made by the stack's own init file under a throwaway prefix; dropped by a
    detached process (each DROP DATABASE waits for a checkpoint: this teardown took 38-58 s in CI runs)."""
    prefix = f"la_sec_{uuid.uuid4().hex[:8]}_"
    try:
        done = _run_init(prefix, {var: uuid.uuid4().hex for var in SERVICES.values()})
        assert done.returncode == 0, done.stderr
        yield prefix
    finally:
        pg_databases.drop_in_background(*_made(prefix))


def _connect(role: str, database: str) -> None:
    url = sa.engine.make_url(PG_ADMIN_URL)
    psycopg2.connect(host=url.host, port=url.port or 5432, user=role, dbname=database).close()


def test_each_service_role_connects_to_its_own_database_only(roles: str) -> None:
    for role in SERVICES:
        for database in SERVICES:
            if role == database:
                _connect(roles + role, roles + database)
            else:
                with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
                    _connect(roles + role, roles + database)


def test_each_service_role_owns_its_database_and_holds_no_server_power(roles: str, admin: sa.Engine) -> None:
    with admin.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT d.datname, pg_get_userbyid(d.datdba), r.rolsuper, r.rolcreatedb, r.rolcreaterole, "
                "r.rolcanlogin FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname LIKE :p"
            ),
            {"p": roles + "%"},
        ).all()
    assert {row[0]: row[1:] for row in rows} == {
        roles + name: (roles + name, False, False, False, True) for name in SERVICES
    }


def test_a_missing_password_stops_the_init_before_it_creates_anything(admin: sa.Engine, pg_databases: PostgresDatabases) -> None:
    prefix = f"la_sec_{uuid.uuid4().hex[:8]}_"
    passwords = {var: uuid.uuid4().hex for var in SERVICES.values()}
    passwords["MLFLOW_PG_PASSWORD"] = ""
    try:
        done = _run_init(prefix, passwords)
        assert done.returncode != 0
        assert "MLFLOW_PG_PASSWORD" in done.stderr
        with admin.connect() as conn:
            made = conn.execute(
                sa.text("SELECT count(*) FROM pg_roles WHERE rolname LIKE :p"), {"p": prefix + "%"}
            ).scalar()
        assert made == 0
    finally:
        pg_databases.drop_in_background(*_made(prefix))  # were it to make any
