"""PostgreSQL going away in the middle of a collect, as ``labeling-assets labelstudio collect`` shows it.

A TCP proxy stands between the label store and the real PostgreSQL server; the test cuts every connection when
the sync's transaction starts (its first statement on ``sync_watermarks``). Dropped once: the attempt fails, the
retry policy's next attempt reconnects and the run succeeds. Dropped on every attempt, or the server gone (new
connections refused): the run fails after its retries (the policy's own, with 0.2 s waits instead of 15 s:
``quick_collect_retries``). Either way a person reads one line naming the store, host
and port, and what to do; never a driver's stack trace.
"""

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from labeling_assets.cli.runs import run_job
from labeling_assets.core.store.schema import LabelStore
from tests.conftest import PostgresDatabases
from tests.faults.test_sync_faults import build_project
from tests.labelstudio_server import LabelStudioServer

pytestmark = [pytest.mark.labelstudio, pytest.mark.postgres]


class PostgresProxy:
    """127.0.0.1:<port> -> PostgreSQL. ``cut()`` closes every open connection; ``stop()`` also stops listening
    (the server is gone: a new connection is refused)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=30)
            with self._lock:
                self._open += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            socks, self._open = self._open, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(OSError):  # wakes the accept() that holds the socket open (Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()


@pytest.fixture
def proxy(pg_databases: PostgresDatabases) -> Iterator[tuple[PostgresProxy, str]]:
    url = sa.engine.make_url(pg_databases.new_url())
    handle = PostgresProxy((url.host or "127.0.0.1", url.port or 5432))
    yield handle, url.set(host="127.0.0.1", port=handle.port).render_as_string(hide_password=False)
    handle.stop()


@pytest.mark.parametrize("outage", ["dropped_once", "dropped_every_attempt", "gone", "gone_with_debug"])
def test_postgres_gone_mid_collect_is_one_line_never_a_trace(
    label_studio: LabelStudioServer,
    proxy: tuple[PostgresProxy, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    outage: str,
    quick_collect_retries: dg.RetryPolicy,
) -> None:
    pg, url = proxy
    store = LabelStore(url)
    store.migrate()
    project = build_project(label_studio, store)
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name, value in {
        "DAGSTER_HOME": str(home), "LABELING_ASSETS_HOME": str(tmp_path / "data"), "LABEL_STORE_URL": url,
        "LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token,
        "LABEL_STUDIO_PROJECT": project.title,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LABELING_ASSETS_DEBUG", "1" if outage.endswith("with_debug") else "")
    monkeypatch.chdir(tmp_path)  # run_job moves to the repository root; the test's folder comes back after

    cuts: list[str] = []

    def cut_at_sync(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "sync_watermarks" not in statement or (cuts and outage != "dropped_every_attempt"):
            return
        cuts.append(statement)
        pg.stop() if outage.startswith("gone") else pg.cut()

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", cut_at_sync)
    try:
        capfd.readouterr()
        code = run_job("collect_job")
        printed = capfd.readouterr()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", cut_at_sync)

    assert cuts  # the outage happened inside the sync
    if outage == "dropped_every_attempt":  # every attempt the policy allows was made, and cut
        assert len(cuts) == 1 + quick_collect_retries.max_retries, cuts
    said = [line for line in (printed.out + printed.err).splitlines() if line.strip()]
    raw = [line for line in said if line.startswith(("Traceback", "  File ", "Stack Trace", "psycopg2", "sqlalchemy"))]
    if outage.endswith("with_debug"):  # --debug: the trace is there for whoever asked
        assert raw and code == 3, "\n".join(said)
        return
    assert not raw, "\n".join(said)
    if outage == "dropped_once":  # the retry landed the sync (later steps of collect_job are not this test's)
        assert "== annotations" in printed.out, "\n".join(said)
        assert not [line for line in said if "ERROR" in line or line.startswith("annotations failed")], "\n".join(said)
    else:
        assert code == 3, "\n".join(said)
        errors = [line for line in said if " failed" in line]
        assert len(errors) <= 2, "\n".join(said)
        assert f"127.0.0.1:{pg.port}" in errors[0] and "label store" in errors[0], errors
