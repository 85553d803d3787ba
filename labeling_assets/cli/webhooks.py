"""``labeling-assets webhooks serve``: the receiver Label Studio's webhooks post annotation events to."""

import argparse

from labeling_assets import env
from labeling_assets.core.errors import ConfigurationError
from labeling_assets.core.store.schema import LabelStore

SECRET_VAR = "LABELING_ASSETS_WEBHOOK_SECRET"


def cmd_serve(args: argparse.Namespace) -> int:
    from labeling_assets.webhooks.serve import serve  # uvicorn and starlette only when serving

    secret = env.variable(SECRET_VAR)
    if not secret:
        raise ConfigurationError(f"${SECRET_VAR} is unset: the receiver refuses every event without the shared secret")
    store = LabelStore(env.label_store_url(), cache_dir=env.store_cache_dir())
    store.ensure_schema()
    print(f"webhook receiver on http://{args.host}:{args.port}/labelstudio (Ctrl-C stops it)", flush=True)
    serve(store, secret, host=args.host, port=args.port)
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "webhooks",
        help="the receiver of Label Studio's webhooks (annotations synced in seconds; polling stays the safety net)",
        description="Label Studio posts annotation events here (registered by `labelstudio bootstrap` and the queue "
        "when $LABELING_ASSETS_WEBHOOK_URL is set); the touched task ids go to the label store and the "
        "touched_tasks_sensor syncs just those tasks. The shared secret: $LABELING_ASSETS_WEBHOOK_SECRET.",
    )
    w_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = w_sub.add_parser("serve", help="serve the receiver in the foreground (POST /labelstudio, GET /health, GET /stats)")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    s.set_defaults(func=cmd_serve)
