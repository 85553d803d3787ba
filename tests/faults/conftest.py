"""Fixtures of the fault suite: a TCP proxy in front of the session's real Label Studio (``label_studio``,
tests/conftest.py) that can cut a response mid-body, and the collect asset's retries without their 15 s waits."""

import contextlib
import math
import socket
import threading
from collections.abc import Callable, Iterator

import dagster as dg
import pytest

from labeling_assets.assets.collect import annotations
from labeling_assets.local import labelstudio as server
from tests.labelstudio_server import LabelStudioServer


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to Label Studio; ``cut_export(n)`` closes the next export's connection after
    ``n`` bytes of its response (headers included), as a dropped network or a dying server would."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut_after: int | None = None
        self.on_cut: Callable[[], None] | None = None
        self.cuts = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_export(self, after_bytes: int, on_cut: Callable[[], None] | None = None) -> None:
        with self._lock:
            self._cut_after, self.on_cut = after_bytes, on_cut

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            except OSError:
                client.close()  # server down: the client sees its connection closed
                continue
            state = {"export": False, "sent": 0}
            threading.Thread(target=self._requests, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client, state), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket, state: dict[str, int]) -> None:
        try:
            while chunk := src.recv(65536):
                if b" /api/projects/" in chunk and b"/export" in chunk.split(b"\r\n", 1)[0]:
                    state["export"], state["sent"] = True, 0
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(src, dst)

    def _responses(self, src: socket.socket, dst: socket.socket, state: dict[str, int]) -> None:
        try:
            while chunk := src.recv(65536):
                with self._lock:
                    budget = self._cut_after if state["export"] else None
                sent = state["sent"]
                if budget is not None and sent + len(chunk) >= budget:
                    dst.sendall(chunk[: budget - sent])
                    with self._lock:
                        self._cut_after, on_cut = None, self.on_cut
                        self.cuts += 1
                    if on_cut is not None:
                        on_cut()
                    return
                dst.sendall(chunk)
                state["sent"] = sent + len(chunk)
        except OSError:
            pass
        finally:
            _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture
def proxy(label_studio: LabelStudioServer) -> Iterator[CuttingProxy]:
    """A cutting proxy in front of the session's Label Studio (a test using it gets the labelstudio marker)."""
    handle = CuttingProxy(label_studio.port)
    yield handle
    handle.close()


@pytest.fixture
def quick_collect_retries(monkeypatch: pytest.MonkeyPatch) -> dg.RetryPolicy:
    """The ``annotations`` asset's own retry policy (its retries, backoff and jitter) with a 0.2 s delay: a test of
    what a retry does, not of how long the daemon waits before it, skips 15 s a retry (45 s a run that fails
    every attempt). For faults that heal by themselves (a restart) the real delay is what spans them: keep it."""
    real = annotations.op.retry_policy
    assert real is not None and real.max_retries >= 1, real  # the policy these tests stand in for retries
    quick = dg.RetryPolicy(max_retries=real.max_retries, delay=0.2, backoff=real.backoff, jitter=real.jitter)
    monkeypatch.setattr(annotations.op, "_retry_policy", quick)
    assert annotations.op.retry_policy is quick  # what Dagster's plan reads for the step
    return quick


@pytest.fixture
def restart_spanning_retries(monkeypatch: pytest.MonkeyPatch) -> dg.RetryPolicy:
    """Retries of the ``annotations`` asset that span a Label Studio start at its longest (``START_TIMEOUT_S``), a
    second apart: the asset's own three retries 15 s apart span a restart of up to about 45 s, and under a loaded
    full test run a restart took longer (the test then failed on the machine, not on the code); a second apart,
    the retry lands within a second of the server being back instead of up to 15 s later."""
    real = annotations.op.retry_policy
    assert real is not None and real.delay, real
    delay = 1.0
    tries = math.ceil(server.START_TIMEOUT_S / delay) + 1
    patient = dg.RetryPolicy(max_retries=tries, delay=delay)
    monkeypatch.setattr(annotations.op, "_retry_policy", patient)
    assert annotations.op.retry_policy is patient
    return patient
