"""A real MLflow tracking server for the integration tests, as the docker stack runs it.

``mlflow server`` with a PostgreSQL backend store (a throwaway database on the test server, dropped with
the others at the end of the session) and a local artifact root served over HTTP (``--serve-artifacts``):
the client logs runs, models and artifacts and sets aliases only through the server's REST API.
Module scoped: started by the first test of a module that asks for it, stopped after its last.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from labeling_assets.local.labelstudio import free_port
from labeling_assets.local.processes import stop_group
from tests.conftest import PostgresDatabases

START_TIMEOUT_S = 120  # migrations of a fresh PostgreSQL store take ~15 s here; a busy CI machine more


@dataclass(frozen=True)
class MLflowServer:
    url: str
    backend_database: str  # the throwaway database's name (the URL itself is never printed)
    artifacts: Path


def _mlflow_command() -> list[str]:
    # The venv's own script, not whichever `mlflow` is first on PATH.
    script = Path(sys.executable).with_name("mlflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]


@pytest.fixture(scope="module")
def mlflow_server(pg_databases: PostgresDatabases) -> Iterator[MLflowServer]:
    backend = pg_databases.new_url()
    folder = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    port = free_port()
    log = (folder / "server.log").open("w")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [
            *_mlflow_command(),
            "server",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",  # the CI machine has 2 cores
            "--backend-store-uri", backend,
            "--artifacts-destination", str(folder / "artifacts"),
            "--serve-artifacts",
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # one process group: the workers go down with the server
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited with {process.returncode}:\n{_tail(folder / 'server.log')}")
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer within {START_TIMEOUT_S} s:\n{_tail(folder / 'server.log')}")
            time.sleep(0.5)
        yield MLflowServer(url=url, backend_database=backend.rsplit("/", 1)[-1], artifacts=folder / "artifacts")
    finally:
        stop_group(process, timeout_s=3)  # a throwaway server: no graceful drain worth waiting for
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.is_file() else ""
