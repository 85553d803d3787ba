"""Run the receiver: in the foreground (``labeling-assets webhooks serve``) or in a thread (demo, tests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from labeling_assets.core.store.schema import LabelStore
from labeling_assets.webhooks.app import PATH, create_app

DEFAULT_PORT = 8765


def _config(store: LabelStore, secret: str, host: str, port: int) -> uvicorn.Config:
    # No access log: every request line would name the peer and path many times a second; refusals log themselves.
    return uvicorn.Config(create_app(store, secret), host=host, port=port, access_log=False, log_level="warning")


def serve(store: LabelStore, secret: str, *, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    uvicorn.Server(_config(store, secret, host, port)).run()


@dataclass
class Running:
    """A receiver serving in a thread of this process; ``url`` is what Label Studio posts to."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(store: LabelStore, secret: str, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 20) -> Running:
    """Start serving in a daemon thread and wait until it listens; ``port=0`` takes a free port (read back, no race)."""
    server = uvicorn.Server(_config(store, secret, host, port))
    thread = threading.Thread(target=server.run, name="webhook-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise OSError(f"the webhook receiver did not start on {host}:{port}")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return Running(server, thread, host, int(bound))
