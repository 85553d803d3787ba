"""The ASGI app Label Studio's webhooks post to: check the secret, record the touched tasks, answer at once.

``POST /labelstudio``: an event (``core/labelstudio/webhooks.py`` reads it). Refused with 401 without the shared
secret header, 413 over ``max_body`` bytes, 400 when the body is not an event (one log line each, never the
secret or the body); otherwise the touched task ids are appended to the store's ``webhook_inbox`` (one small
transaction) and 200 comes back: the sync itself is the annotation sensor's business, seconds later. A store
that cannot be written answers 503 and one line: the incremental poll still brings the change in.
``GET /health``: 200 when the process runs (no secret: a load balancer's probe).
``GET /stats``: the loop at a glance as JSON for a team's dashboard (``core/store/status.py``: items by status, open
tasks, backlog, labelers with their gate figures and pauses, the current dataset version, the champion). It needs
the same secret header as the webhook: it names the labelers and why a gate paused them. 503 when the store
cannot be read.
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labeling_assets.core.errors import one_line
from labeling_assets.core.labelstudio.webhooks import (
    SECRET_HEADER,
    MalformedEvent,
    secret_matches,
    touched_by,
)
from labeling_assets.core.store.schema import LabelStore
from labeling_assets.core.store.status import loop_stats
from labeling_assets.core.store.webhook_inbox import record_touched

log = logging.getLogger("labeling_assets.webhooks")
MAX_BODY_BYTES = 1 << 20  # a Label Studio event with its task and project is a few KB; a batch delete ids only
PATH = "/labelstudio"
STATS_PATH = "/stats"


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    """The body, read no further than ``limit`` bytes (a missing or lying Content-Length changes nothing)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(store: LabelStore, secret: str, *, max_body: int = MAX_BODY_BYTES) -> Starlette:
    """The receiver writing to ``store``; ``secret``: what the ``X-Labeling-Assets-Secret`` header must hold."""
    if not secret:
        raise ValueError("the webhook secret is empty: set LABELING_ASSETS_WEBHOOK_SECRET")

    async def receive(request: Request) -> JSONResponse:
        if not secret_matches(request.headers.get(SECRET_HEADER), secret):
            log.warning("webhook refused from %s: no or wrong %s header", _peer(request), SECRET_HEADER)
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body = await _body(request, max_body)
        except _TooLarge:
            log.warning("webhook refused from %s: body over %d bytes", _peer(request), max_body)
            return JSONResponse({"error": f"body over {max_body} bytes"}, status_code=413)
        try:
            touched = touched_by(json.loads(body))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and MalformedEvent are ValueErrors
            reason = str(exc) if isinstance(exc, MalformedEvent) else f"not JSON ({type(exc).__name__})"
            log.warning("webhook refused from %s: %s", _peer(request), one_line(reason, 200))
            return JSONResponse({"error": "not a Label Studio webhook event"}, status_code=400)
        try:
            written = await run_in_threadpool(record_touched, store, touched)
        except Exception as exc:  # the store is down: the poll brings the change in; say so in one line
            log.error("webhook not recorded (the poll will bring it in): %s", one_line(str(exc), 200))
            return JSONResponse({"error": "store unavailable"}, status_code=503)
        return JSONResponse({"recorded": written})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def stats(request: Request) -> JSONResponse:
        if not secret_matches(request.headers.get(SECRET_HEADER), secret):
            log.warning("stats refused from %s: no or wrong %s header", _peer(request), SECRET_HEADER)
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body = await run_in_threadpool(loop_stats, store)
        except Exception as exc:  # the store is down or not migrated: one line, no traceback to the caller
            log.error("stats not read: %s", one_line(str(exc), 200))
            return JSONResponse({"error": "store unavailable"}, status_code=503)
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route(PATH, receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route(STATS_PATH, stats, methods=["GET"]),
        ]
    )


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
